import { urlAlphabet } from 'nanoid';
import { describe, expect, it } from 'vitest';
import { DuplicateWindow } from '../../src/routing/duplicate-window.js';
import { SLOTS, secureId, slotOf, slottedId } from '../../src/routing/secure-id.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** A window on a manual clock, with `at()`: the time to give `add`, relative to its epoch. */
function windowOn(windowMs: number, maxIds: number): { window: DuplicateWindow; clock: ManualClock; at: () => number } {
  const clock = new ManualClock();
  const epoch = clock.now();
  return { window: new DuplicateWindow(windowMs, maxIds, clock, epoch), clock, at: () => clock.now() - epoch };
}

/** The two ways in: `add` for any ID (hashed), `addGenerated` for one that slottedId made. */
const ways = [
  { way: 'add', id: (name: string): string => name, record: (w: DuplicateWindow, id: string, at: number): void => w.add(id, at) },
  {
    way: 'addGenerated',
    // A fresh random ID, whatever the name.
    id: (): string => slottedId(7),
    record: (w: DuplicateWindow, id: string, at: number): void => w.addGenerated(id, slotOf(id), at),
  },
] as const;

/** Structured IDs of a slotted ID's shape (21 characters of the alphabet) that all share their first ten. */
const orderId = (n: number): string => `order-${String(n).padStart(15, '0')}`;

describe('DuplicateWindow', () => {
  describe.each(ways)('through $way', ({ id, record }) => {
    it('remembers an ID for the window, inclusive, then forgets it', () => {
      const { window, clock, at } = windowOn(100, 10);
      const a = id('a');
      record(window, a, at());
      clock.advance(100);
      expect(window.has(a)).toBe(true);
      clock.advance(1);
      expect(window.has(a)).toBe(false);
    });

    it('holds at most maxIds and at least the newest half of them, dropping the oldest first', () => {
      const { window, at } = windowOn(60_000, 10);
      const ids = Array.from({ length: 100 }, (_, i) => id(`id-${i}`));
      for (const [i, x] of ids.entries()) {
        record(window, x, at());
        const held = ids.filter((y) => window.has(y));
        expect(held.length).toBeLessThanOrEqual(10);
        // The newest ones are the ones held.
        expect(held).toEqual(ids.slice(i + 1 - held.length, i + 1));
      }
      expect(ids.filter((x) => window.has(x)).length).toBeGreaterThanOrEqual(5);
    });

    it('keeps an ID answered again for a full window from its last answer', () => {
      const { window, clock, at } = windowOn(100, 1_000);
      const [a, b] = [id('a'), id('b')];
      record(window, a, at());
      clock.advance(90);
      record(window, b, at());
      record(window, a, at());
      clock.advance(90); // 180 after the first answer, 90 after the second
      expect(window.has(a)).toBe(true);
      expect(window.has(b)).toBe(true);
    });

    it('remembers nothing with a window of 0', () => {
      const { window, at } = windowOn(0, 5);
      const a = id('a');
      record(window, a, at());
      expect(window.has(a)).toBe(false);
    });

    it('forgets everything on clear()', () => {
      const { window, at } = windowOn(60_000, 100);
      const ids = Array.from({ length: 20 }, (_, i) => id(`id-${i}`));
      for (const x of ids) record(window, x, at());
      window.clear();
      expect(ids.filter((x) => window.has(x))).toEqual([]);
    });
  });

  it('forgets an ID that was deleted, in either generation', () => {
    const { window, at } = windowOn(60_000, 4);
    for (const id of ['a', 'b', 'c']) window.add(id, at()); // a, b in the previous generation; c in the current
    window.delete('a', at());
    window.delete('c', at());
    expect(['a', 'b', 'c'].map((id) => window.has(id))).toEqual([false, true, false]);
  });

  it('remembers an ID answered again after it was deleted', () => {
    const { window, clock, at } = windowOn(100, 1_000);
    window.add('a', at());
    expect(window.has('a')).toBe(true);
    window.delete('a', at());
    expect(window.has('a')).toBe(false);
    clock.advance(10);
    window.add('a', at());
    clock.advance(100);
    expect(window.has('a')).toBe(true);
    clock.advance(1);
    expect(window.has('a')).toBe(false);
  });

  it('does not forget a random ID when caller IDs are deleted', () => {
    const { window, at } = windowOn(60_000, 1_000);
    const random = Array.from({ length: 50 }, (_, i) => slottedId(i));
    const named = [...Array.from({ length: 50 }, (_, i) => orderId(i)), ...Array.from({ length: 50 }, secureId)];
    for (const [i, id] of random.entries()) {
      window.addGenerated(id, slotOf(id), at());
      window.add(named[2 * i]!, at());
      window.add(named[2 * i + 1]!, at());
    }
    for (const id of named) window.delete(id, at());
    expect(random.filter((id) => !window.has(id))).toEqual([]);
    expect(named.filter((id) => window.has(id))).toEqual([]);
  });

  it('finds a caller ID added with add() that has a slotted ID’s shape', () => {
    const { window, at } = windowOn(60_000, 1_000);
    // Each names a slot, and its first ten characters read as a fingerprint: has() must still hash it.
    const ids = [secureId(), slottedId(0), slottedId(SLOTS - 1), 'A'.repeat(21), orderId(1)];
    expect(ids.every((id) => slotOf(id) >= 0)).toBe(true);
    for (const id of ids) window.add(id, at());
    expect(ids.filter((id) => !window.has(id))).toEqual([]);
  });

  it('tells apart caller IDs that share their first ten characters', () => {
    const { window, at } = windowOn(60_000, 1_000);
    const ids = Array.from({ length: 200 }, (_, n) => orderId(n));
    expect(new Set(ids.map((id) => id.slice(0, 10))).size).toBe(1);
    expect(ids.every((id) => slotOf(id) >= 0)).toBe(true);
    ids.forEach((id, n) => {
      if (n % 2 === 1) window.add(id, at());
    });
    expect(ids.filter((id) => window.has(id))).toEqual(ids.filter((_, n) => n % 2 === 1));
  });

  it('tells apart 2¹⁷ held IDs, of both kinds, from others and near misses, at half load', () => {
    // 2¹⁷ IDs fill one generation's table to half, the most it is loaded.
    const count = 1 << 16;
    const { window, at } = windowOn(60_000, 4 * count);
    const random = Array.from({ length: count }, (_, i) => slottedId(i % SLOTS));
    // Caller IDs: random ones of the slotted shape, structured ones of that shape sharing their first ten characters, and others.
    const named = Array.from({ length: count }, (_, i) => (i % 3 === 0 ? secureId() : i % 3 === 1 ? orderId(i) : `job:${i}`));
    for (const id of random) window.addGenerated(id, slotOf(id), at());
    for (const id of named) window.add(id, at());
    expect(random.filter((id) => !window.has(id))).toEqual([]);
    expect(named.filter((id) => !window.has(id))).toEqual([]);

    const others = [
      ...Array.from({ length: count }, (_, i) => slottedId(i % SLOTS)),
      ...Array.from({ length: count / 2 }, secureId),
      ...Array.from({ length: count / 4 }, (_, i) => orderId(3 * i + 2)), // never added: i % 3 === 2 ones are job:…
      ...Array.from({ length: count / 4 }, (_, i) => `job:${3 * i}`),
    ];
    expect(others.filter((id) => window.has(id))).toEqual([]);

    // Near misses: one character changed — anywhere, by any one bit of its
    // value — or a prefix.
    const changed = (id: string, i: number): string => {
      const value = urlAlphabet.indexOf(id[i]!);
      return `${id.slice(0, i)}${value < 0 ? 'A' : urlAlphabet[value ^ (1 << (i % 6))]!}${id.slice(i + 1)}`;
    };
    const near = [
      ...random.slice(0, count / 4).flatMap((id, i) => [changed(id, i % id.length), id.slice(0, -1)]),
      ...named.slice(0, count / 4).flatMap((id, i) => [changed(id, i % id.length), id.slice(0, -1)]),
    ];
    const held = new Set([...random, ...named]);
    expect(near.filter((id) => !held.has(id) && window.has(id))).toEqual([]);
  });
});
