import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FingerprintTable } from '../../src/structures/fingerprint-table.js';

/**
 * Fingerprints from small pools, so that many share a slot (`high` equal
 * modulo the capacity) or one half with another fingerprint: probing, and
 * comparing both halves, are what the table can get wrong.
 */
const high = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom(64, 1 << 20, -(1 << 20), 0x7fffffff, -0x80000000),
  fc.integer({ min: -0x80000000, max: 0x7fffffff }),
);
const low = fc.oneof(fc.constantFrom(1, 3, -1, 0x7fffffff, -0x7fffffff), fc.integer({ min: -0x80000000, max: 0x7fffffff }).map((n) => n | 1));
const fingerprint = fc.tuple(high, low);

describe('FingerprintTable', () => {
  it('behaves like a Map of fingerprint to time, through growth', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key: fingerprint, time: fc.integer({ min: -1_000, max: 1e9 }) }),
      fc.record({ kind: fc.constant('get' as const), key: fingerprint }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 500, size: 'max' }), (ops) => {
        const table = new FingerprintTable(2);
        const model = new Map<string, number>();
        for (const o of ops) {
          const [h, l] = o.key;
          const k = `${h},${l}`;
          if (o.kind === 'set') {
            table.set(h, l, o.time);
            model.set(k, o.time);
          } else {
            expect(table.get(h, l)).toBe(model.get(k));
          }
          expect(table.size).toBe(model.size);
          expect(table.capacity).toBeGreaterThanOrEqual(2 * table.size);
        }
        for (const [k, time] of model) {
          const [h, l] = k.split(',').map(Number) as [number, number];
          expect(table.get(h, l)).toBe(time);
        }
      }),
    );
  });

  it('is empty after clear(), keeping its slots', () => {
    const table = new FingerprintTable(4);
    for (const h of [1, 2, 3, 4, 5]) table.set(h, 1, 1);
    const capacity = table.capacity;
    table.clear();
    expect([table.size, table.capacity, table.get(1, 1)]).toEqual([0, capacity, undefined]);
    table.set(1, 1, 2);
    expect(table.get(1, 1)).toBe(2);
  });
});
