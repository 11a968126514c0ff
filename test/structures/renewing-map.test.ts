import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RenewingMap } from '../../src/structures/renewing-map.js';

describe('RenewingMap', () => {
  it('behaves like a Map across the renewals that deletions trigger', () => {
    const key = fc.integer({ min: 0, max: 100 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key, value: fc.integer() }),
      fc.record({ kind: fc.constant('delete' as const), key }),
      fc.record({ kind: fc.constant('get' as const), key }),
    );
    fc.assert(
      // Long enough to cross the 1 024-deletion renewal several times.
      fc.property(fc.array(op, { minLength: 8_000, maxLength: 12_000 }), (ops) => {
        const map = new RenewingMap<number, number>();
        const model = new Map<number, number>();
        for (const o of ops) {
          if (o.kind === 'set') {
            map.set(o.key, o.value);
            model.set(o.key, o.value);
          } else if (o.kind === 'delete') {
            expect(map.delete(o.key)).toBe(model.delete(o.key));
          } else {
            expect([map.get(o.key), map.has(o.key)]).toEqual([model.get(o.key), model.has(o.key)]);
          }
        }
        expect(map.size).toBe(model.size);
        for (const [k, v] of model) expect(map.get(k)).toBe(v);
      }),
      { numRuns: 30 },
    );
  });
});
