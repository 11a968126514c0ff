import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SlotTable } from '../src/slot-table.js';

const PAGE = 64;

/** Claims `count` slots, expecting each to succeed. */
function claimMany(table: SlotTable<unknown>, count: number): number[] {
  const slots = Array.from({ length: count }, () => table.claim());
  expect(slots.filter((slot) => slot < 0)).toEqual([]);
  return slots;
}

const pageOf = (slot: number): number => Math.floor(slot / PAGE);

describe('SlotTable', () => {
  it('behaves like a Map of held slots, handing out a slot again only once its page is given back', () => {
    const limit = 4 * PAGE;
    const op = fc.oneof(
      { weight: 4, arbitrary: fc.constant({ kind: 'claim' as const }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('set' as const), pick: fc.nat(), value: fc.integer() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('get' as const), slot: fc.integer({ min: 0, max: limit - 1 }) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 1_500, size: 'max' }), (ops) => {
        const table = new SlotTable<number>(limit);
        /** Held slots and their values (`undefined` until set). */
        const model = new Map<number, number | undefined>();
        const held: number[] = [];
        /** Per page number: the slots handed out since the page was last given back, and how many are held. */
        const handed = Array.from({ length: limit / PAGE }, () => new Set<number>());
        const live = new Array<number>(limit / PAGE).fill(0);
        for (const o of ops) {
          if (o.kind === 'claim') {
            const slot = table.claim();
            // -1 exactly when every page is spoken for: each has handed out
            // all its slots, and holds one (else it would have been given back).
            expect(slot < 0).toBe(handed.every((slots) => slots.size === PAGE));
            if (slot >= 0) {
              const page = pageOf(slot);
              expect(slot).toBeLessThan(limit);
              expect(handed[page]!.has(slot)).toBe(false);
              handed[page]!.add(slot);
              live[page]!++;
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
              const page = pageOf(slot);
              if (held.length === 0) {
                // An empty table starts over.
                for (const slots of handed) slots.clear();
                live.fill(0);
              } else if (--live[page]! === 0 && handed[page]!.size === PAGE) {
                handed[page]!.clear();
              }
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

  it('does not hand out a released slot again while its page is in use', () => {
    const table = new SlotTable<string>(8 * PAGE);
    // Page 0 handed out all its slots, and holds one: it is not given back.
    claimMany(table, PAGE);
    table.set(0, 'zero');
    for (let slot = 1; slot < PAGE; slot++) table.release(slot);
    // On the page being filled, released slots stay out of use too.
    expect(claimMany(table, 10)).toEqual(Array.from({ length: 10 }, (_, i) => PAGE + i));
    for (let slot = PAGE; slot < PAGE + 10; slot++) table.release(slot);
    const next = table.claim();
    expect(next).toBe(PAGE + 10);
    table.set(next, 'next');
    claimMany(table, PAGE - 11);
    for (let slot = PAGE + 11; slot < 2 * PAGE; slot++) table.release(slot);
    // Pages 0 and 1 each hold one slot; six more pages are filled around them.
    const later = claimMany(table, 6 * PAGE);
    expect(later.filter((slot) => slot < 2 * PAGE)).toEqual([]);
    expect(new Set(later).size).toBe(later.length);
    expect([table.get(0), table.get(next), table.claim()]).toEqual(['zero', 'next', -1]);
    // Once a page holds nothing, its number comes back.
    table.release(next);
    expect(table.claim()).toBe(PAGE);
  });

  it('reuses the number of a drained page, and answers -1 when every page is held', () => {
    const table = new SlotTable<string>(2 * PAGE);
    claimMany(table, 2 * PAGE);
    expect(table.claim()).toBe(-1);
    // Page 1 drained but for one slot: still held.
    for (let slot = PAGE; slot < 2 * PAGE - 1; slot++) table.release(slot);
    expect(table.claim()).toBe(-1);
    // Page 0 drained: its number comes back, for a fresh page.
    for (let slot = 0; slot < PAGE; slot++) table.release(slot);
    expect(table.size).toBe(1);
    const again = claimMany(table, PAGE);
    expect(again).toEqual(Array.from({ length: PAGE }, (_, i) => i));
    expect(again.map((slot) => table.get(slot))).toEqual(again.map(() => undefined));
    expect(table.claim()).toBe(-1);
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
