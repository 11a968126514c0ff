import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Fifo } from '../../src/structures/fifo.js';

describe('Fifo', () => {
  it('behaves like an array queue with removal by sequence number', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('push' as const), value: fc.integer() }),
      fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('shift' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 3_000 }), (ops) => {
        const fifo = new Fifo<{ value: number }>();
        let model: { seq: number; item: { value: number } }[] = [];
        const seqs: number[] = [];
        for (const o of ops) {
          if (o.kind === 'push') {
            const item = { value: o.value };
            const seq = fifo.push(item);
            seqs.push(seq);
            model.push({ seq, item });
          } else if (o.kind === 'remove' && seqs.length > 0) {
            const seq = seqs[o.pick % seqs.length]!;
            fifo.remove(seq);
            model = model.filter((m) => m.seq !== seq);
          } else if (o.kind === 'shift') {
            expect(fifo.shift()).toBe(model.shift()?.item);
          }
          expect(fifo.size).toBe(model.length);
          expect(fifo.peek()).toBe(model[0]?.item);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps its array to the span of the items held when they are removed in order', async () => {
    const fifo = new Fifo<object>();
    const live: number[] = [];
    globalThis.gc!();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 1_000_000; i++) {
      live.push(fifo.push({}));
      if (live.length > 100) fifo.remove(live.shift()!);
    }
    globalThis.gc!();
    // A million slots of holes would be 8 MB; a hundred items are nothing.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(1024 * 1024);
    expect(fifo.size).toBe(100);
  });

  it('stays fast when the front is removed over and over (no tombstone walk)', () => {
    const fifo = new Fifo<object>();
    const live: number[] = [];
    for (let i = 0; i < 200_000; i++) {
      live.push(fifo.push({}));
      if (live.length > 100_000) fifo.remove(live.shift()!);
      fifo.peek();
    }
    expect(fifo.size).toBe(100_000);
  });
});
