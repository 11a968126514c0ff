import type { Clock } from './clock.js';
import { Fifo } from './fifo.js';

interface Answered {
  readonly id: string;
  readonly at: number;
}

/**
 * Answered IDs of ended exchanges, remembered for `duplicateWindow` ms so
 * that a redelivered reply is reported `duplicate` rather than `unmatched`.
 * Bounded on its own (`maxDuplicates`), apart from the tag store, so that a
 * flood of answered IDs can never evict a rollback tag.
 *
 * Every record has the same lifetime, so insertion order is expiry order: a
 * FIFO beside a `Map` is all it takes, and the oldest records go first when
 * the bound is reached. Not lru-cache: recency means nothing here, and one
 * record is added per answered request, on the hot path, where lru-cache's
 * count-bounded TTL mode measured 2.7 µs a `set`.
 */
export class DuplicateWindow {
  readonly #windowMs: number;
  readonly #maxIds: number;
  readonly #clock: Clock;
  /** ID → its ticket in `#order`. */
  readonly #tickets = new Map<string, number>();
  readonly #order = new Fifo<Answered>();

  /**
   * @param windowMs - How long an answered ID is remembered; `0` turns the window off.
   * @param maxIds - Most IDs remembered; the oldest go first.
   * @param clock - Time source for expiry.
   */
  constructor(windowMs: number, maxIds: number, clock: Clock) {
    this.#windowMs = windowMs;
    this.#maxIds = maxIds;
    this.#clock = clock;
  }

  /** Remembers that `id` was answered. */
  add(id: string): void {
    if (this.#windowMs === 0) return;
    const now = this.#clock.now();
    this.delete(id);
    this.#tickets.set(id, this.#order.push({ id, at: now }));
    this.#expire(now);
  }

  /** Whether `id` was answered within the window. */
  has(id: string): boolean {
    const ticket = this.#tickets.get(id);
    if (ticket === undefined) return false;
    // Kept while its age is at most the window, as lru-cache's TTLs are.
    return this.#clock.now() - this.#order.get(ticket)!.at <= this.#windowMs;
  }

  /** Forgets `id`: it was registered again and ended unanswered. */
  delete(id: string): void {
    const ticket = this.#tickets.get(id);
    if (ticket === undefined) return;
    this.#order.remove(ticket);
    this.#tickets.delete(id);
  }

  /** Forgets every ID. */
  clear(): void {
    this.#tickets.clear();
    this.#order.clear();
  }

  #expire(now: number): void {
    for (let oldest = this.#order.peek(); oldest !== undefined; oldest = this.#order.peek()) {
      if (this.#order.size <= this.#maxIds && now - oldest.at <= this.#windowMs) return;
      this.#order.shift();
      this.#tickets.delete(oldest.id);
    }
  }
}
