import { LRUCache } from 'lru-cache';
import { checkClock, checkInteger, checkOptionsObject, optionKeys } from './_validate.js';
import type { Clock } from './clock.js';
import { tagEvictedChannel, type TagEvictedMessage } from './events.js';
import type { TagStore } from './adapters.js';

/** Default {@link MemoryTagStoreOptions.maxTags} (and the controller's `maxTags`). */
export const DEFAULT_MAX_TAGS = 100_000;

/** Options of {@link MemoryTagStore}. */
export interface MemoryTagStoreOptions {
  /**
   * Most IDs held; the least recently used is evicted first. Memory is taken
   * as IDs are tagged, not reserved up front.
   * @defaultValue 100 000
   */
  maxTags?: number;
  /** Time source for expiry. @defaultValue {@link systemClock} */
  clock?: Clock;
}

interface TagEntry {
  readonly tag: string;
  /** Clock time after which the tag is gone; `Infinity` for never. */
  readonly expiresAt: number;
}

/**
 * The default tag store: in this process's memory, on `lru-cache`, bounded
 * by `maxTags` IDs. Evicting an ID that still had live tags is published on
 * `rrxc:tag:evicted`, so a too-small bound shows up in monitoring rather than
 * as silently `unmatched` late replies.
 */
export class MemoryTagStore implements TagStore {
  readonly #clock: Clock;
  readonly #cache: LRUCache<string, readonly TagEntry[]>;

  /**
   * @param options - Bound and clock.
   * @throws {@link InvalidArgumentError} for an unknown option or a bad value.
   */
  constructor(options?: MemoryTagStoreOptions) {
    const given = checkOptionsObject(options, 'MemoryTagStore options', MEMORY_TAG_STORE_KEYS);
    const maxTags = checkInteger('maxTags', given.maxTags ?? DEFAULT_MAX_TAGS, 1);
    this.#clock = checkClock(given.clock);
    this.#cache = new LRUCache<string, readonly TagEntry[]>({
      // A count bound through maxSize rather than max: `max` pre-allocates
      // every slot up front (about 4 MB for 100 000 IDs).
      maxSize: maxTags,
      sizeCalculation: () => 1,
      perf: this.#clock,
      // 0: read the injected clock on every check; any resolution > 0 makes
      // lru-cache cache "now" and schedule a timer to forget it.
      ttlResolution: 0,
      dispose: (entries, id, reason) => {
        if (reason === 'evict' && tagEvictedChannel.hasSubscribers) {
          const tags = this.#live(entries);
          if (tags.length > 0) tagEvictedChannel.publish({ correlationId: id, tags } satisfies TagEvictedMessage);
        }
      },
    });
  }

  /** {@inheritDoc TagStore.tag} */
  tag(id: string, tag: string, ttl: number): void {
    this.#put(id, this.#cache.get(id), tag, ttl, this.#clock.now());
  }

  /** {@inheritDoc TagStore.claim} */
  claim(id: string, tag: string, ttl: number, rivals: readonly string[]): string | undefined {
    // One look-up and one clock read for both the check and the write: the
    // end of every exchange that timed out claims each of its IDs.
    const entries = this.#cache.get(id);
    const now = this.#clock.now();
    if (entries !== undefined) {
      for (const e of entries) if (e.expiresAt > now && (e.tag === tag || rivals.includes(e.tag))) return e.tag;
    }
    this.#put(id, entries, tag, ttl, now);
    return undefined;
  }

  /** Puts `tag` on `id`, whose entries are `entries`, keeping its other live tags. */
  #put(id: string, entries: readonly TagEntry[] | undefined, tag: string, ttl: number, now: number): void {
    const entry: TagEntry = { tag, expiresAt: ttl === 0 ? Infinity : now + ttl };
    if (entries === undefined) {
      this.#cache.set(id, [entry], { ttl: ttl === 0 ? 0 : Math.max(1, Math.ceil(ttl)) });
      return;
    }
    const next = [...entries.filter((e) => e.tag !== tag && e.expiresAt > now), entry];
    this.#cache.set(id, next, { ttl: cacheTtl(next, now) });
  }

  /** {@inheritDoc TagStore.untag} */
  untag(id: string, tag: string): boolean {
    const entries = this.#cache.get(id);
    if (entries === undefined) return false;
    const now = this.#clock.now();
    const kept = entries.filter((e) => e.tag !== tag && e.expiresAt > now);
    const removed = entries.some((e) => e.tag === tag && e.expiresAt > now);
    if (kept.length === 0) this.#cache.delete(id);
    else if (kept.length !== entries.length) this.#cache.set(id, kept, { ttl: cacheTtl(kept, now) });
    return removed;
  }

  /** {@inheritDoc TagStore.getTags} */
  getTags(id: string): readonly string[] {
    const entries = this.#cache.get(id);
    return entries === undefined ? [] : this.#live(entries);
  }

  /** Forgets every tag. */
  close(): void {
    this.#cache.clear();
  }

  #live(entries: readonly TagEntry[]): string[] {
    const now = this.#clock.now();
    return entries.filter((e) => e.expiresAt > now).map((e) => e.tag);
  }
}

const MEMORY_TAG_STORE_KEYS = optionKeys<MemoryTagStoreOptions>({ maxTags: true, clock: true });

/** lru-cache TTL of an ID: until its last tag expires; 0 (none) if one never does. */
function cacheTtl(entries: readonly TagEntry[], now: number): number {
  const last = Math.max(...entries.map((e) => e.expiresAt));
  return last === Infinity ? 0 : Math.max(1, Math.ceil(last - now));
}
