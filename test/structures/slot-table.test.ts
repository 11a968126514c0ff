import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SlotTable } from '../../src/structures/slot-table.js';

const PAGE = 64;

/** Claims `count` slots, expecting each to succeed. */
function claimMany(table: SlotTable<unknown>, count: number): number[] {
  const slots = Array.from({ length: count }, () => table.claim());
  expect(slots.filter((slot) => slot < 0)).toEqual([]);
  return slots;
}

describe('SlotTable', () => {
  it('behaves like a Map of held slots, claiming only free ones, and -1 exactly when all are held', () => {
    // Twelve pages, and runs of one kind of operation: enough to empty more
    // pages at once than the table keeps as spares, so that some are given back.
    const limit = 12 * PAGE;
    const op = fc.oneof(
      { weight: 4, arbitrary: fc.constant({ kind: 'claim' as const }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('set' as const), pick: fc.nat(), value: fc.integer() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('get' as const), slot: fc.integer({ min: 0, max: limit - 1 }) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(op, fc.integer({ min: 1, max: 300 })), { minLength: 1, maxLength: 40 }), (runs) => {
        const ops = runs.flatMap(([o, n]) => Array<typeof o>(n).fill(o));
        const table = new SlotTable<number>(limit);
        /** Held slots and their values (`undefined` until set). */
        const model = new Map<number, number | undefined>();
        const held: number[] = [];
        for (const o of ops) {
          if (o.kind === 'claim') {
            const slot = table.claim();
            expect(slot < 0).toBe(model.size === limit);
            if (slot >= 0) {
              expect(slot).toBeLessThan(limit);
              expect(model.has(slot)).toBe(false);
              model.set(slot, undefined);
              held.push(slot);
            }
          } else if (o.kind === 'get') {
            expect(table.get(o.slot)).toBe(model.get(o.slot));
          } else if (held.length > 0) {
            const at = o.pick % held.length;
            const slot = held[at]!;
            if (o.kind === 'set') {
              table.set(slot, o.value);
              model.set(slot, o.value);
            } else {
              table.release(slot);
              model.delete(slot);
              held[at] = held[held.length - 1]!;
              held.pop();
            }
          }
          expect(table.size).toBe(model.size);
        }
        const all = Array.from({ length: limit }, (_, slot) => slot);
        expect(all.map((slot) => table.get(slot))).toEqual(all.map((slot) => model.get(slot)));
      }),
      // A failing sequence can be long: bound its shrinking.
      { plugins: [fc.interruptAfterTimeLimit(20_000)] },
    );
  });

  it('hands out slots in order, a page at a time', () => {
    const table = new SlotTable<string>(4 * PAGE);
    const slots = claimMany(table, 2 * PAGE + 3);
    expect(slots).toEqual(Array.from({ length: 2 * PAGE + 3 }, (_, i) => i));
  });

  it('claims a released slot again before it starts a page: a long-lived value holds one slot, not a page', () => {
    const table = new SlotTable<string>(8 * PAGE);
    claimMany(table, 2 * PAGE);
    // One long-lived value on each page; the rest come and go.
    table.set(0, 'zero');
    table.set(PAGE, 'page one');
    for (let slot = 1; slot < PAGE; slot++) table.release(slot);
    for (let slot = PAGE + 1; slot < 2 * PAGE; slot++) table.release(slot);
    const again = claimMany(table, 2 * (PAGE - 1));
    expect(again.every((slot) => slot < 2 * PAGE)).toBe(true);
    expect([table.get(0), table.get(PAGE), table.size]).toEqual(['zero', 'page one', 2 * PAGE]);
    // A stale key naming a slot finds the newer value: its owner compares keys.
    table.set(again[0]!, 'old');
    table.release(again[0]!);
    const reused = table.claim();
    expect(reused).toBe(again[0]);
    table.set(reused, 'new');
    expect(table.get(reused)).toBe('new');
  });

  it('answers -1 only when every slot is held, and reuses the numbers of pages given back', () => {
    const table = new SlotTable<string>(2 * PAGE);
    claimMany(table, 2 * PAGE);
    expect(table.claim()).toBe(-1);
    table.release(PAGE + 5);
    expect(table.claim()).toBe(PAGE + 5);
    expect(table.claim()).toBe(-1);
    // Page 0 empties: claims fill it again.
    for (let slot = 0; slot < PAGE; slot++) table.release(slot);
    expect(table.size).toBe(PAGE);
    expect(claimMany(table, PAGE).sort((a, b) => a - b)).toEqual(Array.from({ length: PAGE }, (_, i) => i));
    expect(table.claim()).toBe(-1);
  });

  it('keeps its pages with room straight as pages are given back from the middle of them', () => {
    const table = new SlotTable<string>(8 * PAGE);
    claimMany(table, 8 * PAGE);
    const page = (n: number): number[] => Array.from({ length: PAGE }, (_, i) => n * PAGE + i);
    // Pages 0–5 get room, in that order; then 0–3 empty (kept as spares),
    // 4 empties and is given back from the middle, 5 moving into its place.
    for (let n = 0; n <= 5; n++) table.release(n * PAGE);
    for (let n = 0; n <= 4; n++) for (const slot of page(n).slice(1)) table.release(slot);
    // Page 6 gets room on top; page 5 empties and is given back, from the middle again.
    table.release(6 * PAGE);
    for (const slot of page(5).slice(1)) table.release(slot);
    // Every slot not held can be claimed, and each holds what is put in it.
    const free = 8 * PAGE - table.size;
    const claimed = claimMany(table, free);
    for (const slot of claimed) table.set(slot, `v${slot}`);
    expect(claimed.map((slot) => table.get(slot))).toEqual(claimed.map((slot) => `v${slot}`));
    expect([table.claim(), table.size]).toEqual([-1, 8 * PAGE]);
  });

  it('gives back the memory of drained pages, and holds no value once everything is released', () => {
    const table = new SlotTable<object>(1 << 24);
    const count = 1 << 20;
    // One value in every slot: what is measured is the table's own memory.
    const value = {};
    const baseline = heapUsed();
    for (let i = 0; i < count; i++) table.set(table.claim(), value);
    // Held throughout, on a page of its own: the table never empties.
    const keeper = table.claim();
    expect(keeper).toBe(count);
    table.set(keeper, value);
    const full = heapUsed();
    for (let slot = 0; slot < count; slot++) table.release(slot);
    const drained = heapUsed();
    expect(table.size).toBe(1);
    let found = 0;
    for (let slot = 0; slot < count; slot++) if (table.get(slot) !== undefined) found++;
    expect(found).toBe(0);
    expect(table.get(keeper)).toBe(value);
    // 16 384 pages take ~9 MB; once drained the table may keep their numbers, ~0.3 MB.
    expect(full - baseline).toBeGreaterThan(6_000_000);
    expect(drained - baseline).toBeLessThan((full - baseline) / 10);
    // The numbers come back: the keeper's page is filled, then the drained ones reused.
    const again = Int32Array.from({ length: count }, () => table.claim());
    expect(again.reduce((a, b) => Math.min(a, b))).toBe(0);
    expect(again.reduce((a, b) => Math.max(a, b))).toBe(count + PAGE - 1);
    for (const slot of again) table.release(slot);
    table.release(keeper);
    expect([table.size, table.get(keeper)]).toEqual([0, undefined]);
  });
});

function heapUsed(): number {
  for (let i = 0; i < 3; i++) globalThis.gc!();
  return process.memoryUsage().heapUsed;
}
