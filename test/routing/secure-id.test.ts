import { urlAlphabet } from 'nanoid';
import { describe, expect, it } from 'vitest';
import { SLOTS, secureId, slotOf, slottedId } from '../../src/routing/secure-id.js';

describe('secureId', () => {
  it('draws 21 characters of the URL alphabet, evenly, without repeats across pool refills', () => {
    // 5 000 IDs span ten refills of the 512-ID random pool.
    const ids = Array.from({ length: 5_000 }, secureId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => /^[\w-]{21}$/.test(id))).toBe(true);
    const counts = new Map<string, number>();
    for (const id of ids) for (const c of id) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual([...urlAlphabet].sort());
    // 105 000 characters over 64: ~1 640 each; a stuck or biased byte would stand out.
    for (const n of counts.values()) expect(n).toBeGreaterThan(1_300);
    for (const n of counts.values()) expect(n).toBeLessThan(2_000);
  });
});

describe('slottedId and slotOf', () => {
  it('name the slot in the last four characters, the first 17 random, mixed with secureId across pool refills', () => {
    const slots = [0, 1, 63, 64, 4_095, 4_096, 262_143, SLOTS - 1];
    // Alternating with secureId, so that refills come at every offset.
    const ids = Array.from({ length: 6_000 }, (_, i) => (i % 3 === 0 ? secureId() : slottedId(slots[i % slots.length]!)));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => /^[\w-]{21}$/.test(id))).toBe(true);
    ids.forEach((id, i) => {
      if (i % 3 !== 0) expect(slotOf(id)).toBe(slots[i % slots.length]);
    });
    const heads = ids.filter((_, i) => i % 3 !== 0).map((id) => id.slice(0, 17));
    // No random byte is used twice: no 7-character run (42 bits) recurs anywhere.
    const runs = heads.flatMap((head) => Array.from({ length: 11 }, (_, at) => head.slice(at, at + 7)));
    expect(new Set(runs).size).toBe(runs.length);
    const counts = new Map<string, number>();
    for (const head of heads) for (const c of head) counts.set(c, (counts.get(c) ?? 0) + 1);
    // 68 000 random characters over 64: ~1 060 each.
    expect(counts.size).toBe(64);
    for (const n of counts.values()) expect(n).toBeGreaterThan(850);
    for (const n of counts.values()) expect(n).toBeLessThan(1_300);
  });

  it('tell strings without the shape apart: too short, or a last-four character outside the alphabet', () => {
    const id = slottedId(5);
    expect(slotOf(id)).toBe(5);
    for (const other of [id.slice(1), `${id}.`, `${id.slice(0, 17)}.${id.slice(18)}`, `${id.slice(0, 20)}é`, '']) expect(slotOf(other)).toBeLessThan(0);
    // A backplane's instance prefix may come first: the slot is in the last four characters.
    expect(slotOf(`instance-7~${id}`)).toBe(5);
    // Any 21 characters whose last four are in the alphabet name some slot: the holder compares IDs.
    expect(slotOf('order-000000000000042')).toBeGreaterThanOrEqual(0);
  });
});
