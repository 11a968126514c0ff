import { getRandomValues } from 'node:crypto';
import type { Clock } from './clock.js';
import { FingerprintTable } from './fingerprint-table.js';

/**
 * Answered IDs of ended exchanges, remembered for `duplicateWindow` ms so
 * that a redelivered reply is reported `duplicate` rather than `unmatched`.
 * Bounded on its own (`maxDuplicates`), apart from the tag store, so that a
 * flood of answered IDs can never evict a rollback tag.
 *
 * Two generations of ID → answer time: new answers go into the current one;
 * when it holds half the bound, or is older than the window, it becomes the
 * previous one and the previous one is dropped whole. `has()` checks the
 * answer time, so it is exact for every ID still held; under the bound the
 * oldest half goes first.
 *
 * Each generation is a {@link FingerprintTable}, not a `Map` of the ID
 * strings. Every answered ID lives here for up to a minute: long enough to
 * outlive the young generation of V8's heap, short enough to die soon after
 * in the old one — the costliest lifetime an object can have. Held as
 * strings, they made the garbage collector the largest cost of a
 * one-request exchange (the window doubled its time); as fingerprints in
 * typed arrays the collector never sees them. Only the application's own
 * answered IDs are added, so outside input can neither fill the tables nor
 * crowd their probes.
 */
export class DuplicateWindow {
  readonly #windowMs: number;
  readonly #generationSize: number;
  readonly #clock: Clock;
  /** Answer times are kept relative to this. */
  readonly #epoch: number;
  readonly #seeds: Int32Array;
  #current: FingerprintTable;
  #previous: FingerprintTable;
  /** When `#current` took its first answer. */
  #currentSince = 0;

  /**
   * @param windowMs - How long an answered ID is remembered; `0` turns the window off.
   * @param maxIds - Most IDs remembered; the oldest go first.
   * @param clock - Time source for expiry.
   */
  constructor(windowMs: number, maxIds: number, clock: Clock) {
    this.#windowMs = windowMs;
    this.#generationSize = Math.max(1, Math.floor(maxIds / 2));
    this.#clock = clock;
    this.#epoch = clock.now();
    this.#seeds = getRandomValues(new Int32Array(2));
    this.#current = this.#table(MIN_CAPACITY);
    this.#previous = this.#table(MIN_CAPACITY);
  }

  /**
   * Remembers that `id` was answered.
   * @param at - When (clock time): its exchange's end.
   */
  add(id: string, at: number): void {
    if (this.#windowMs === 0) return;
    const now = at - this.#epoch;
    if (this.#current.size >= this.#generationSize || now - this.#currentSince > this.#windowMs) this.#rotate();
    if (this.#current.size === 0) this.#currentSince = now;
    this.#current.set(id, now);
  }

  /** Whether `id` was answered within the window. */
  has(id: string): boolean {
    const at = this.#current.get(id) ?? this.#previous.get(id);
    // Kept while its age is at most the window, as lru-cache's TTLs are.
    return at !== undefined && this.#clock.now() - this.#epoch - at <= this.#windowMs;
  }

  /** Forgets `id`: it was registered again and ended unanswered. */
  delete(id: string): void {
    this.#current.remove(id);
    this.#previous.remove(id);
  }

  /** Forgets every ID, and the memory that held them. */
  clear(): void {
    this.#current = this.#table(MIN_CAPACITY);
    this.#previous = this.#table(MIN_CAPACITY);
  }

  /**
   * The current generation becomes the previous one; the dropped one is
   * emptied and reused, unless the traffic the closing generation saw calls
   * for another size.
   */
  #rotate(): void {
    const dropped = this.#previous;
    this.#previous = this.#current;
    const capacity = capacityFor(this.#previous.size);
    if (dropped.capacity === capacity) {
      dropped.clear();
      this.#current = dropped;
    } else {
      this.#current = this.#table(capacity);
    }
  }

  #table(capacity: number): FingerprintTable {
    return new FingerprintTable(capacity, this.#seeds);
  }
}

/** Slots of a table that has seen nothing yet. */
const MIN_CAPACITY = 64;

/** The slots that hold `size` fingerprints at most half full. */
function capacityFor(size: number): number {
  let capacity = MIN_CAPACITY;
  while (capacity < 2 * size) capacity *= 2;
  return capacity;
}
