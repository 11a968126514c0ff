import { describe, expect, it } from 'vitest';
import { CorrelationIndex } from '../../src/routing/correlation-index.js';
import { DuplicateWindow } from '../../src/routing/duplicate-window.js';
import { CapacityError, CorrelationIdConflictError } from '../../src/errors.js';
import { secureId, slotOf } from '../../src/routing/secure-id.js';
import { ManualClock } from '../helpers/manual-clock.js';

interface Entry {
  readonly correlationId: string;
}

const PAGE = 64;

function indexOf(limit = 1_000, generate?: () => string): CorrelationIndex<Entry> {
  const clock = new ManualClock();
  return new CorrelationIndex<Entry>(limit, generate, '', 256, new DuplicateWindow(60_000, 1_000, clock, clock.now()));
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
    for (const e of ended) index.end(e, false, 0);
    expect(ended.filter((e) => index.has(e.correlationId))).toEqual([]);
    expect(kept.every((e) => index.get(e.correlationId) === e)).toBe(true);
    expect(index.size).toBe(kept.length);
  });

  it('does not take a stale ID for the entry that now holds its slot', () => {
    const index = indexOf();
    const page = Array.from({ length: PAGE }, () => register(index));
    for (const e of page) index.end(e, true, 0);
    // The drained page's number is reused: the next entry gets the first one's slot.
    const stale = page[0]!;
    const fresh = register(index);
    expect(slotOf(fresh.correlationId)).toBe(slotOf(stale.correlationId));
    expect(index.get(stale.correlationId)).toBeUndefined();
    expect(index.get(fresh.correlationId)).toBe(fresh);
    // Ending the stale entry again leaves the slot to its new holder.
    index.end(stale, false, 0);
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
    index.end(given, true, 0);
    expect([index.get(given.correlationId), index.get(generated.correlationId)]).toEqual([undefined, generated]);
    const again = registerAs(index, given.correlationId);
    index.end(generated, true, 0);
    expect([index.get(again.correlationId), index.get(generated.correlationId)]).toEqual([again, undefined]);
  });

  it('counts entries of both kinds against the limit', () => {
    const index = indexOf(4);
    const entries = [register(index), registerAs(index, 'a'), register(index), registerAs(index, sameSlot(secureId()))];
    expect(index.size).toBe(4);
    expect(() => index.claimId()).toThrow(CapacityError);
    expect(() => index.add('b', { correlationId: 'b' })).toThrow(CapacityError);
    index.end(entries[0]!, false, 0);
    registerAs(index, 'b');
    expect(() => register(index)).toThrow(CapacityError);
    index.end(entries[1]!, false, 0);
    register(index);
    expect(index.size).toBe(4);
  });

  it('remembers the ID of an entry that ended answered, of either kind', () => {
    const index = indexOf();
    const answered = [register(index), registerAs(index, 'order-1'), registerAs(index, secureId())];
    const unanswered = [register(index), registerAs(index, 'order-2'), registerAs(index, secureId())];
    for (const e of answered) index.end(e, true, 0);
    for (const e of unanswered) index.end(e, false, 0);
    expect(answered.map((e) => index.wasAnswered(e.correlationId))).toEqual([true, true, true]);
    expect(unanswered.map((e) => index.wasAnswered(e.correlationId))).toEqual([false, false, false]);
    index.forgetAnswered();
    expect(answered.map((e) => index.wasAnswered(e.correlationId))).toEqual([false, false, false]);
  });

  it('forgets the earlier answer of a caller ID whose new entry ends unanswered', () => {
    const index = indexOf();
    for (const id of ['order-1', secureId()]) {
      index.end(registerAs(index, id), true, 0);
      expect(index.wasAnswered(id)).toBe(true);
      index.end(registerAs(index, id), false, 0);
      expect(index.wasAnswered(id)).toBe(false);
    }
  });

  it('routes the IDs of a custom generator through the map', () => {
    let n = 0;
    // Some of its IDs have a slotted ID's shape: they must not be taken for slots.
    const index = indexOf(1_000, () => (n++ % 2 === 0 ? `job-${n}` : secureId()));
    const entries = Array.from({ length: 2 * PAGE }, () => register(index));
    expect(entries.slice(0, 2).map((e) => e.correlationId.startsWith('job-'))).toEqual([true, false]);
    expect(entries.every((e) => index.get(e.correlationId) === e)).toBe(true);
    for (const e of entries.slice(0, PAGE)) index.end(e, true, 0);
    expect(entries.slice(0, PAGE).filter((e) => index.has(e.correlationId) || !index.wasAnswered(e.correlationId))).toEqual([]);
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
    const clock = new ManualClock();
    const index = new CorrelationIndex<Entry>(1_000, undefined, '', 256, new DuplicateWindow(60_000, 1_000, clock, clock.now()), PAGE);
    const slotted = Array.from({ length: PAGE }, () => register(index));
    const overflow = Array.from({ length: 10 }, () => register(index));
    expect(new Set([...slotted, ...overflow].map((e) => e.correlationId)).size).toBe(PAGE + 10);
    for (const entry of [...slotted, ...overflow]) expect(index.get(entry.correlationId)).toBe(entry);
    expect(index.size).toBe(PAGE + 10);
    // Ending one of each kind frees what it held: a slot is claimed again, the Map shrinks.
    index.end(slotted[3]!, true, 0);
    index.end(overflow[0]!, true, 0);
    expect([index.get(slotted[3]!.correlationId), index.get(overflow[0]!.correlationId), index.size]).toEqual([undefined, undefined, PAGE + 8]);
    expect([index.wasAnswered(slotted[3]!.correlationId), index.wasAnswered(overflow[0]!.correlationId)]).toEqual([true, true]);
    const next = register(index);
    expect(slotOf(next.correlationId)).toBe(slotOf(slotted[3]!.correlationId));
    for (const entry of [...slotted.filter((_, i) => i !== 3), ...overflow.slice(1), next]) index.end(entry, false, 0);
    expect(index.size).toBe(0);
  });
});
