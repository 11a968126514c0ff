import { LRUCache } from 'lru-cache';
import type { Clock } from './clock.js';

/**
 * Answered IDs of ended exchanges, remembered for `duplicateWindow` ms so
 * that a redelivered reply is reported `duplicate` rather than `unmatched`.
 * Bounded on its own (`maxDuplicates`), apart from the tag store, so that a
 * flood of answered IDs can never evict a rollback tag.
 */
export class DuplicateWindow {
  readonly #cache: LRUCache<string, true> | undefined;

  /**
   * @param windowMs - How long an answered ID is remembered; `0` turns the window off.
   * @param maxIds - Most IDs remembered; the oldest go first.
   * @param clock - Time source for expiry.
   */
  constructor(windowMs: number, maxIds: number, clock: Clock) {
    this.#cache =
      windowMs === 0
        ? undefined
        : new LRUCache<string, true>({
            ttl: Math.ceil(windowMs),
            // maxSize rather than max: max pre-allocates every slot up front.
            maxSize: maxIds,
            sizeCalculation: () => 1,
            perf: clock,
            ttlResolution: 0,
          });
  }

  /** Remembers that `id` was answered. */
  add(id: string): void {
    this.#cache?.set(id, true);
  }

  /** Forgets `id`: it was registered again and ended unanswered. */
  delete(id: string): void {
    this.#cache?.delete(id);
  }

  /** Whether `id` was answered within the window. */
  has(id: string): boolean {
    return this.#cache?.has(id) ?? false;
  }

  /** Forgets every ID. */
  clear(): void {
    this.#cache?.clear();
  }
}
