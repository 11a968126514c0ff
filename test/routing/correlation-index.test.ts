import { describe, expect, it } from 'vitest';
import { CorrelationIndex } from '../../src/routing/correlation-index.js';
import { CapacityError, CorrelationIdConflictError } from '../../src/errors.js';
import { secureId, slotOf } from '../../src/routing/secure-id.js';

interface Entry {
  readonly correlationId: string;
}

const PAGE = 64;

function indexOf(limit = 1_000, generate?: () => string): CorrelationIndex<Entry> {
  return new CorrelationIndex<Entry>(limit, generate, '', 256);
}

/** Registers an entry under a generated ID, as registerRequest does. */
function register(index: CorrelationIndex<Entry>): Entry {
  const entry = { correlationId: index.claimId() };
  index.addClaimed(entry.correlationId, entry);
  return entry;
}

/** Registers an entry under a caller's ID. */
function registerAs(index: CorrelationIndex<Entry>, correlationId: string): Entry {
  const entry = { correlationId };
  index.add(correlationId, entry);
  return entry;
}

/** An ID of a slotted ID's shape, but not `id`, that names the same slot. */
function sameSlot(id: string): string {
  const other = `${secureId().slice(0, 17)}${id.slice(17)}`;
  expect([other === id, slotOf(other)]).toEqual([false, slotOf(id)]);
  return other;
}

describe('CorrelationIndex', () => {
  it('routes a generated ID to its entry, until the entry ends', () => {
    const index = indexOf();
    const entries = Array.from({ length: 3 * PAGE }, () => register(index));
    expect(entries.every((e) => slotOf(e.correlationId) >= 0)).toBe(true);
    expect(entries.every((e) => index.get(e.correlationId) === e)).toBe(true);
    expect(index.size).toBe(entries.length);
    const [ended, kept] = [entries.filter((_, i) => i % 2 === 0), entries.filter((_, i) => i % 2 === 1)];
    for (const e of ended) index.release(e);
    expect(ended.filter((e) => index.has(e.correlationId))).toEqual([]);
    expect(kept.every((e) => index.get(e.correlationId) === e)).toBe(true);
    expect(index.size).toBe(kept.length);
  });

  it('does not take a stale ID for the entry that now holds its slot', () => {
    const index = indexOf();
    const page = Array.from({ length: PAGE }, () => register(index));
    for (const e of page) index.release(e);
    // The drained page's number is reused: the next entry gets the first one's slot.
    const stale = page[0]!;
    const fresh = register(index);
    expect(slotOf(fresh.correlationId)).toBe(slotOf(stale.correlationId));
    expect(index.get(stale.correlationId)).toBeUndefined();
    expect(index.get(fresh.correlationId)).toBe(fresh);
    // Ending the stale entry again leaves the slot to its new holder.
    index.release(stale);
    expect(index.get(fresh.correlationId)).toBe(fresh);
    expect(index.size).toBe(1);
  });

  it('refuses a caller ID that is pending, generated or given', () => {
    const index = indexOf();
    const generated = register(index);
    const given = registerAs(index, 'order-1');
    expect(() => index.add(generated.correlationId, { correlationId: generated.correlationId })).toThrow(CorrelationIdConflictError);
    expect(() => index.add('order-1', { correlationId: 'order-1' })).toThrow(CorrelationIdConflictError);
    expect([index.get(generated.correlationId), index.get('order-1'), index.size]).toEqual([generated, given, 2]);
  });

  it('routes a caller ID that names a slot held by another entry to its own entry', () => {
    const index = indexOf();
    const generated = register(index);
    const given = registerAs(index, sameSlot(generated.correlationId));
    expect(index.get(given.correlationId)).toBe(given);
    expect(index.get(generated.correlationId)).toBe(generated);
    // Ending either leaves the other where it was.
    index.release(given);
    expect([index.get(given.correlationId), index.get(generated.correlationId)]).toEqual([undefined, generated]);
    const again = registerAs(index, given.correlationId);
    index.release(generated);
    expect([index.get(again.correlationId), index.get(generated.correlationId)]).toEqual([again, undefined]);
  });

  it('counts entries of both kinds against the limit', () => {
    const index = indexOf(4);
    const entries = [register(index), registerAs(index, 'a'), register(index), registerAs(index, sameSlot(secureId()))];
    expect(index.size).toBe(4);
    expect(() => index.claimId()).toThrow(CapacityError);
    expect(() => index.add('b', { correlationId: 'b' })).toThrow(CapacityError);
    index.release(entries[0]!);
    registerAs(index, 'b');
    expect(() => register(index)).toThrow(CapacityError);
    index.release(entries[1]!);
    register(index);
    expect(index.size).toBe(4);
  });

  it('answers, on release, the slot a generated ID held and -1 for an ID in the Map', () => {
    const index = indexOf();
    const generated = register(index);
    const given = [registerAs(index, 'order-1'), registerAs(index, sameSlot(generated.correlationId))];
    expect(index.release(generated)).toBe(slotOf(generated.correlationId));
    expect(given.map((e) => index.release(e))).toEqual([-1, -1]);
    // Released twice: the second finds nothing of its own to free.
    expect(index.release(generated)).toBe(-1);
    expect(index.size).toBe(0);
  });

  it('routes the IDs of a custom generator through the map', () => {
    let n = 0;
    // Some of its IDs have a slotted ID's shape: they must not be taken for slots.
    const index = indexOf(1_000, () => (n++ % 2 === 0 ? `job-${n}` : secureId()));
    const entries = Array.from({ length: 2 * PAGE }, () => register(index));
    expect(entries.slice(0, 2).map((e) => e.correlationId.startsWith('job-'))).toEqual([true, false]);
    expect(entries.every((e) => index.get(e.correlationId) === e)).toBe(true);
    for (const e of entries.slice(0, PAGE)) index.release(e);
    expect(entries.slice(0, PAGE).filter((e) => index.has(e.correlationId))).toEqual([]);
    expect(entries.slice(PAGE).every((e) => index.get(e.correlationId) === e)).toBe(true);
    expect(index.size).toBe(PAGE);
  });

  it('skips a pending ID the generator returns, and gives up on one that keeps returning it', () => {
    const ids = ['a', 'a', 'b'];
    const index = indexOf(1_000, () => ids.shift() ?? 'a');
    expect(register(index).correlationId).toBe('a');
    expect(register(index).correlationId).toBe('b');
    expect(() => index.claimId()).toThrow(CorrelationIdConflictError);
    expect(index.size).toBe(2);
  });

  it('gives plain random IDs, routed through the Map, once every slot is held', () => {
    const index = new CorrelationIndex<Entry>(1_000, undefined, '', 256, PAGE);
    const slotted = Array.from({ length: PAGE }, () => register(index));
    const overflow = Array.from({ length: 10 }, () => register(index));
    expect(new Set([...slotted, ...overflow].map((e) => e.correlationId)).size).toBe(PAGE + 10);
    for (const entry of [...slotted, ...overflow]) expect(index.get(entry.correlationId)).toBe(entry);
    expect(index.size).toBe(PAGE + 10);
    // Ending one of each kind frees what it held: a slot is claimed again, the Map shrinks.
    index.release(slotted[3]!);
    index.release(overflow[0]!);
    expect([index.get(slotted[3]!.correlationId), index.get(overflow[0]!.correlationId), index.size]).toEqual([undefined, undefined, PAGE + 8]);
    const next = register(index);
    expect(slotOf(next.correlationId)).toBe(slotOf(slotted[3]!.correlationId));
    for (const entry of [...slotted.filter((_, i) => i !== 3), ...overflow.slice(1), next]) index.release(entry);
    expect(index.size).toBe(0);
  });
});
