import { MemoryTagStore, type Clock, type TagStore } from '../../src/index.js';

/**
 * An asynchronous tag store whose writes stay pending until the test calls
 * `release()`: what a test needs to see whether something waits for the
 * rollback tags or settles before they are written. Reads and untags answer
 * at once from the memory behind it.
 */
export class GatedTagStore implements TagStore {
  readonly inner: MemoryTagStore;
  readonly #held: (() => void)[] = [];

  constructor(clock?: Clock) {
    this.inner = new MemoryTagStore(clock === undefined ? {} : { clock });
  }

  /** Writes asked for and not released yet. */
  get pendingWrites(): number {
    return this.#held.length;
  }

  tag(id: string, tag: string, ttl: number): Promise<void> {
    return new Promise((resolve) =>
      this.#held.push(() => {
        this.inner.tag(id, tag, ttl);
        resolve();
      }),
    );
  }

  claim(id: string, tag: string, ttl: number, rivals: readonly string[]): Promise<string | undefined> {
    return new Promise((resolve) => this.#held.push(() => resolve(this.inner.claim(id, tag, ttl, rivals))));
  }

  untag(id: string, tag: string): boolean {
    return this.inner.untag(id, tag);
  }

  getTags(id: string): readonly string[] {
    return this.inner.getTags(id);
  }

  /** Completes every pending write. */
  release(): void {
    for (const write of this.#held.splice(0)) write();
  }
}

/** Lets every queued microtask and the I/O callbacks before it run. */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
