import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OPEN_SLOT, OpenSet } from '../src/open-set.js';

describe('OpenSet', () => {
  it('holds exactly what was added and not deleted; deleting twice is harmless', () => {
    const op = fc.oneof(fc.record({ kind: fc.constant('add' as const) }), fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 1_000 }), (ops) => {
        const set = new OpenSet<{ [OPEN_SLOT]: number; n: number }>();
        const made: { [OPEN_SLOT]: number; n: number }[] = [];
        const model = new Set<{ [OPEN_SLOT]: number; n: number }>();
        for (const o of ops) {
          if (o.kind === 'add') {
            const member = { [OPEN_SLOT]: -1, n: made.length };
            made.push(member);
            set.add(member);
            model.add(member);
          } else if (made.length > 0) {
            const member = made[o.pick % made.length]!;
            set.delete(member);
            model.delete(member);
          }
          expect(set.size).toBe(model.size);
        }
        const drained = new Set<{ [OPEN_SLOT]: number; n: number }>();
        for (let m = set.any(); m !== undefined; m = set.any()) {
          drained.add(m);
          set.delete(m);
        }
        expect(drained).toEqual(model);
      }),
    );
  });
});
