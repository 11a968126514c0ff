import { describe, expect, it } from 'vitest';
import { Waits } from '../../src/structures/expiry-queue.js';

describe('Waits (acknowledgement waits of the Redis backplane)', () => {
  it('answers a wait by sequence number once, and expires the others in arming order', () => {
    const waits = new Waits<string>(4);
    waits.add(1, 100, 'a');
    waits.add(2, 110, 'b');
    waits.add(3, 120, 'c');
    expect(waits.take(2)).toBe('b');
    expect(waits.take(2)).toBeUndefined();
    expect(waits.take(7)).toBeUndefined();
    const expired: string[] = [];
    expect(waits.expire(99, expired)).toBe(100);
    expect(waits.expire(115, expired)).toBe(120);
    expect(expired).toEqual(['a']);
    expect(waits.expire(120, expired)).toBeUndefined();
    expect(expired).toEqual(['a', 'c']);
    expect(waits.size).toBe(0);
  });

  it('skips ended and re-armed waits when sweeping, and expires a re-armed one at its new time', () => {
    const waits = new Waits<string>(4);
    waits.add(1, 100, 'first try');
    waits.add(2, 100, 'b');
    expect(waits.take(1)).toBe('first try');
    waits.add(1, 200, 'second try');
    waits.take(2);
    const expired: string[] = [];
    expect(waits.expire(150, expired)).toBe(200);
    expect(expired).toEqual([]);
    expect(waits.expire(200, expired)).toBeUndefined();
    expect(expired).toEqual(['second try']);
  });

  it('grows when two waits share a slot, or the expiry ring is full, keeping every wait and the order', () => {
    const waits = new Waits<number>(2);
    const seqs = [5, 1029, 6, 7, 8, 2053, 9, 10, 4101, 11];
    for (const [i, seq] of seqs.entries()) waits.add(seq, i, seq);
    expect(waits.size).toBe(seqs.length);
    expect(waits.take(2053)).toBe(2053);
    const expired: number[] = [];
    expect(waits.expire(4, expired)).toBe(6);
    expect(expired).toEqual([5, 1029, 6, 7, 8]);
    for (let seq = 100; seq < 140; seq++) waits.add(seq, 10 + seq, seq);
    expect(waits.expire(Infinity, expired)).toBeUndefined();
    expect(expired).toEqual([5, 1029, 6, 7, 8, 9, 10, 4101, 11, ...Array.from({ length: 40 }, (_, i) => 100 + i)]);
    expect(waits.size).toBe(0);
  });

  it('hands back every wait on clear()', () => {
    const waits = new Waits<string>();
    waits.add(3, 10, 'x');
    waits.add(70_000, 20, 'y');
    expect(waits.clear().sort()).toEqual(['x', 'y']);
    expect(waits.size).toBe(0);
    expect(waits.expire(Infinity, [])).toBeUndefined();
  });
});
