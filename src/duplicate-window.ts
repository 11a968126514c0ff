import type { Clock } from './clock.js';

/**
 * Answered IDs of ended exchanges, remembered for `duplicateWindow` ms so
 * that a redelivered reply is reported `duplicate` rather than `unmatched`.
 * Bounded on its own (`maxDuplicates`), apart from the tag store, so that a
 * flood of answered IDs can never evict a rollback tag.
 *
 * Every record has the same lifetime, so insertion order is expiry order:
 * one `Map` of ID → answer time, read oldest first through a single
 * long-lived iterator, is a FIFO with amortised O(1) expiry. (A fresh
 * iterator per expiry would walk every tombstone V8 leaves at the front of
 * the table; a live one moves past each once.) Not lru-cache: recency means
 * nothing here, and one record is added per answered request, on the hot
 * path, where lru-cache's count-bounded TTL mode measured 2.7 µs a `set`.
 */
export class DuplicateWindow {
  readonly #windowMs: number;
  readonly #maxIds: number;
  readonly #clock: Clock;
  /** Answer times are kept relative to this, so they stay small integers rather than boxed doubles. */
  readonly #epoch: number;
  readonly #answeredAt = new Map<string, number>();
  #oldest: Iterator<string> | undefined;
  /** The oldest ID read from `#oldest` and not expired yet, and its answer time. */
  #head: string | undefined;
  #headAt = 0;

  /**
   * @param windowMs - How long an answered ID is remembered; `0` turns the window off.
   * @param maxIds - Most IDs remembered; the oldest go first.
   * @param clock - Time source for expiry.
   */
  constructor(windowMs: number, maxIds: number, clock: Clock) {
    this.#windowMs = windowMs;
    this.#maxIds = maxIds;
    this.#clock = clock;
    this.#epoch = clock.now();
  }

  /** Remembers that `id` was answered. */
  add(id: string): void {
    if (this.#windowMs === 0) return;
    const now = this.#clock.now() - this.#epoch;
    const answeredAt = this.#answeredAt;
    const size = answeredAt.size;
    answeredAt.set(id, now);
    if (answeredAt.size === size) {
      // Answered before: a set keeps its old place, so move it to the back.
      this.delete(id);
      answeredAt.set(id, now);
    }
    this.#expire(now);
  }

  /** Whether `id` was answered within the window. */
  has(id: string): boolean {
    const at = this.#answeredAt.get(id);
    // Kept while its age is at most the window, as lru-cache's TTLs are.
    return at !== undefined && this.#clock.now() - this.#epoch - at <= this.#windowMs;
  }

  /** Forgets `id`: it was registered again and ended unanswered. */
  delete(id: string): void {
    this.#answeredAt.delete(id);
    // The iterator meets the ID again where it is re-added, if it is.
    if (id === this.#head) this.#head = undefined;
  }

  /** Forgets every ID. */
  clear(): void {
    this.#answeredAt.clear();
    this.#oldest = this.#head = undefined;
  }

  #expire(now: number): void {
    const answeredAt = this.#answeredAt;
    for (;;) {
      if (this.#head === undefined) {
        const next = (this.#oldest ??= answeredAt.keys()).next();
        if (next.done === true) {
          // A finished iterator stays finished: start a new one next time.
          this.#oldest = undefined;
          return;
        }
        const at = answeredAt.get(next.value);
        // Already deleted (a tombstone the iterator was past before it went).
        if (at === undefined) continue;
        this.#head = next.value;
        this.#headAt = at;
      }
      if (answeredAt.size <= this.#maxIds && now - this.#headAt <= this.#windowMs) return;
      answeredAt.delete(this.#head);
      this.#head = undefined;
    }
  }
}
