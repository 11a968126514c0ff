import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OPEN_SET_INDEX, OpenSet } from '../../src/structures/open-set.js';

describe('OpenSet', () => {
  it('holds exactly what was added and not deleted, through compactions; deleting twice is harmless', () => {
    const op = fc.oneof(fc.record({ kind: fc.constant('add' as const) }), fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }));
    // Runs of adds then of deletes, long enough to pass the 1 024 slots where the set compacts.
    const ops = fc.array(fc.tuple(op, fc.integer({ min: 1, max: 400 })), { maxLength: 40 }).map((runs) => runs.flatMap(([o, n]) => Array<typeof o>(n).fill(o)));
    fc.assert(
      fc.property(ops, (ops) => {
        const set = new OpenSet<{ [OPEN_SET_INDEX]: number; n: number }>();
        const made: { [OPEN_SET_INDEX]: number; n: number }[] = [];
        const model = new Set<{ [OPEN_SET_INDEX]: number; n: number }>();
        for (const o of ops) {
          if (o.kind === 'add') {
            const member = { [OPEN_SET_INDEX]: -1, n: made.length };
            made.push(member);
            set.add(member);
            model.add(member);
          } else if (made.length > 0) {
            const member = made[(o.pick + made.length - model.size) % made.length]!;
            set.delete(member);
            model.delete(member);
          }
          expect(set.size).toBe(model.size);
        }
        expect(new Set(set.members())).toEqual(model);
        expect(set.members()).toHaveLength(model.size);
        // Every member still knows its slot: deleting each empties the set.
        for (const m of set.members()) set.delete(m);
        expect([set.size, set.members()]).toEqual([0, []]);
      }),
      { numRuns: 60 },
    );
  });

  it('keeps every member findable by its slot after shrinking to a quarter', () => {
    type Member = { [OPEN_SET_INDEX]: number; n: number };
    const set = new OpenSet<Member>();
    const made: Member[] = Array.from({ length: 4_000 }, (_, n) => ({ [OPEN_SET_INDEX]: -1, n }));
    for (const m of made) set.add(m);
    // Every other one, then most of the rest: the set compacts on the way down.
    const kept = new Set(made.filter((m) => m.n % 10 === 1));
    for (const m of made) if (!kept.has(m)) set.delete(m);
    expect(new Set(set.members())).toEqual(kept);
    // Deleting one removes exactly that one.
    const left = new Set(kept);
    for (const m of kept) {
      set.delete(m);
      left.delete(m);
      expect(new Set(set.members())).toEqual(left);
    }
  });
});
