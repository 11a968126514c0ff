import type { Clock } from './clock.js';

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
 * oldest half goes first. Why not one `Map` (or lru-cache, which keys one):
 * a `Map` that takes one insert and one delete per answered request fills
 * with tombstones and rehashes its whole table every few ten thousand
 * answers, a multi-megabyte allocation that measured as a quarter of the
 * time of a one-request exchange, plus the GC it drives. Dropping a
 * generation whole leaves no tombstones.
 */
export class DuplicateWindow {
  readonly #windowMs: number;
  readonly #generationSize: number;
  readonly #clock: Clock;
  /** Answer times are kept relative to this, so they stay small integers rather than boxed doubles. */
  readonly #epoch: number;
  #current = new Map<string, number>();
  #previous = new Map<string, number>();
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
  }

  /**
   * Remembers that `id` was answered.
   * @param at - When (clock time): its exchange's end.
   */
  add(id: string, at: number): void {
    if (this.#windowMs === 0) return;
    const now = at - this.#epoch;
    if (this.#current.size >= this.#generationSize || now - this.#currentSince > this.#windowMs) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
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
    this.#current.delete(id);
    this.#previous.delete(id);
  }

  /** Forgets every ID. */
  clear(): void {
    this.#current = new Map();
    this.#previous = new Map();
  }
}
