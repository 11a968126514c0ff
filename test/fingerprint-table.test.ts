import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FingerprintTable } from '../src/fingerprint-table.js';
import { secureId } from '../src/secure-id.js';

const seeds = (): Int32Array => new Int32Array([0x2545f491, -0x1b873593]);

describe('FingerprintTable', () => {
  it('behaves like a Map of string to time, removal reading as -Infinity, through growth', () => {
    const key = fc.oneof(fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('a', 'b', 'ab', 'ba', ''));
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key, time: fc.integer({ min: -1_000, max: 1e9 }) }),
      fc.record({ kind: fc.constant('remove' as const), key }),
      fc.record({ kind: fc.constant('get' as const), key }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 2_000 }), (ops) => {
        const table = new FingerprintTable(2, seeds());
        const model = new Map<string, number>();
        for (const o of ops) {
          if (o.kind === 'set') {
            table.set(o.key, o.time);
            model.set(o.key, o.time);
          } else if (o.kind === 'remove') {
            table.remove(o.key);
            if (model.has(o.key)) model.set(o.key, -Infinity);
          } else {
            expect(table.get(o.key)).toBe(model.get(o.key));
          }
          expect(table.size).toBe(model.size);
          expect(table.capacity).toBeGreaterThanOrEqual(2 * table.size);
        }
        for (const [k, time] of model) expect(table.get(k)).toBe(time);
      }),
    );
  });

  it('tells apart 200 000 held IDs from 200 000 others, at half load', () => {
    const table = new FingerprintTable(1 << 19, seeds());
    const held = Array.from({ length: 200_000 }, secureId);
    held.forEach((id, i) => table.set(id, i));
    expect(table.capacity).toBe(1 << 19);
    expect(held.every((id, i) => table.get(id) === i)).toBe(true);
    const others = Array.from({ length: 200_000 }, secureId);
    expect(others.filter((id) => table.get(id) !== undefined)).toEqual([]);
    // Near misses: one character changed, or a prefix.
    const near = held.slice(0, 50_000).flatMap((id) => [`${id.slice(0, -1)}${id.endsWith('A') ? 'B' : 'A'}`, id.slice(0, -1)]);
    expect(near.filter((id) => table.get(id) !== undefined)).toEqual([]);
  });

  it('is empty after clear(), keeping its slots', () => {
    const table = new FingerprintTable(4, seeds());
    for (const id of ['a', 'b', 'c', 'd', 'e']) table.set(id, 1);
    const capacity = table.capacity;
    table.clear();
    expect([table.size, table.capacity, table.get('a')]).toEqual([0, capacity, undefined]);
    table.set('a', 2);
    expect(table.get('a')).toBe(2);
  });
});
