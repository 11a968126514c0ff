import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExpiryQueue } from '../../src/structures/expiry-queue.js';

describe('ExpiryQueue', () => {
  it('behaves like an array queue with removal by handle and by key, through growth and shrinking', () => {
    const op = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('add' as const), keyed: fc.boolean(), key: fc.nat(40) }) },
      fc.record({ kind: fc.constant('burst' as const), count: fc.integer({ min: 1, max: 3_000 }) }),
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }) },
      fc.record({ kind: fc.constant('take' as const), key: fc.nat(40) }),
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('shift' as const), by: fc.nat(3_100) }) },
      fc.record({ kind: fc.constant('drain' as const), count: fc.nat(3_000) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const queue = new ExpiryQueue<{ n: number }>();
        let model: { handle: number; key: number | undefined; at: number; value: { n: number } }[] = [];
        let time = 0;
        const add = (key: number | undefined): void => {
          const value = { n: time };
          const handle = queue.add(value, time, key);
          if (key !== undefined) model = model.filter((m) => m.key !== key);
          model.push({ handle, key, at: time++, value });
        };
        for (const o of ops) {
          if (o.kind === 'add') add(o.keyed ? o.key : undefined);
          else if (o.kind === 'burst') for (let i = 0; i < o.count; i++) add(undefined);
          else if (o.kind === 'delete' && model.length > 0) {
            const picked = model[o.pick % model.length]!;
            expect(queue.delete(picked.handle)).toBe(picked.value);
            expect(queue.delete(picked.handle)).toBeUndefined();
            model = model.filter((m) => m !== picked);
          } else if (o.kind === 'take') {
            const held = model.find((m) => m.key === o.key);
            expect(queue.take(o.key)).toBe(held?.value);
            model = model.filter((m) => m !== held);
          } else if (o.kind === 'shift') {
            const now = time - 3_100 + o.by;
            const first = model[0];
            expect(queue.shift(now)).toBe(first !== undefined && first.at <= now ? first.value : undefined);
            if (first !== undefined && first.at <= now) model.shift();
          } else if (o.kind === 'drain') {
            // In order, as exchanges that share a timeout mostly end.
            for (const m of model.slice(0, o.count)) expect(queue.delete(m.handle)).toBe(m.value);
            model = model.slice(o.count);
          }
          expect(queue.size).toBe(model.length);
          expect(queue.nextAt).toBe(model[0]?.at);
        }
        expect(queue.clear()).toEqual(model.map((m) => m.value));
        expect([queue.size, queue.nextAt]).toEqual([0, undefined]);
      }),
      { numRuns: 200 },
    );
  });

  it('files a key while the slot it reuses held a removed key still held elsewhere (a resend re-added under its key)', () => {
    // Found by the fault run: the Redis backplane re-adds an acknowledgement
    // wait under the same key at every resend. Before the fix, the reused
    // slot kept the removed entry's key, and growing the index to file 9
    // (9 & 7 === 1) took it for a second live entry under key 1: the index
    // doubled forever.
    const queue = new ExpiryQueue<string>();
    queue.add('a', 1, 1);
    queue.take(1);
    queue.add('a again', 2, 1);
    for (let k = 2; k <= 7; k++) queue.add(`k${k}`, 3, k);
    queue.add('b', 4, 9);
    expect([queue.take(1), queue.take(9), queue.size]).toEqual(['a again', 'b', 6]);
  });

  it('finds an entry by key once, and never another key that shares its index slot', () => {
    const queue = new ExpiryQueue<string>();
    queue.add('a', 100, 1);
    queue.add('b', 110, 2);
    queue.add('c', 120, 3);
    expect(queue.take(2)).toBe('b');
    expect(queue.take(2)).toBeUndefined();
    expect(queue.take(7)).toBeUndefined();
    // 1 + 8 shares slot 1 of the first index: the index grows rather than mixing them up.
    queue.add('d', 130, 9);
    expect(queue.take(9)).toBe('d');
    expect(queue.take(1)).toBe('a');
    expect(queue.shift(119)).toBeUndefined();
    expect(queue.shift(120)).toBe('c');
    expect(queue.size).toBe(0);
  });

  it('replaces the entry held under a key added again, which then expires at its new time', () => {
    const queue = new ExpiryQueue<string>();
    queue.add('first try', 100, 1);
    queue.add('b', 100, 2);
    queue.add('second try', 200, 1);
    expect(queue.size).toBe(2);
    expect(queue.shift(150)).toBe('b');
    expect(queue.shift(150)).toBeUndefined();
    expect(queue.nextAt).toBe(200);
    expect(queue.shift(200)).toBe('second try');
    expect(queue.take(1)).toBeUndefined();
  });

  it('keeps its memory to the span of the entries held when they are removed in order', () => {
    const queue = new ExpiryQueue<object>();
    const live: number[] = [];
    globalThis.gc!();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 1_000_000; i++) {
      live.push(queue.add({}, i));
      if (live.length > 100) queue.delete(live.shift()!);
    }
    globalThis.gc!();
    // A million slots would be 16 MB; a hundred entries are nothing.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(1024 * 1024);
    expect(queue.size).toBe(100);
  });

  it('gives a burst memory back once it has drained', () => {
    const queue = new ExpiryQueue<object>();
    // One value for every entry: what is measured is the queue's own memory.
    const value = {};
    const handles = Array.from({ length: 500_000 }, (_, i) => queue.add(value, i));
    globalThis.gc!();
    const full = process.memoryUsage().heapUsed;
    for (const handle of handles.slice(0, -10)) queue.delete(handle);
    globalThis.gc!();
    expect(full - process.memoryUsage().heapUsed).toBeGreaterThan(4 * 1024 * 1024);
    expect(queue.size).toBe(10);
  });

  it('gives all of a burst memory back when it empties out of order, the oldest entry last (a lane kept for the next exchange)', () => {
    const queue = new ExpiryQueue<object>();
    const value = {};
    globalThis.gc!();
    const before = process.memoryUsage().heapUsed;
    const handles = Array.from({ length: 500_000 }, (_, i) => queue.add(value, i));
    for (const handle of handles.reverse()) queue.delete(handle);
    globalThis.gc!();
    // 500 000 slots are 8 MB; a ring halved once on the last removal would keep half of that.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(1024 * 1024);
    expect(queue.size).toBe(0);
  });

  it('stays fast when the front is removed over and over (no tombstone walk)', () => {
    const queue = new ExpiryQueue<object>();
    const live: number[] = [];
    for (let i = 0; i < 200_000; i++) {
      live.push(queue.add({}, i));
      if (live.length > 100_000) queue.delete(live.shift()!);
      void queue.nextAt;
    }
    expect(queue.size).toBe(100_000);
  });
});
