import { urlAlphabet } from 'nanoid';
import { describe, expect, it } from 'vitest';
import { secureId } from '../src/secure-id.js';

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
