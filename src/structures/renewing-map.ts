/** Fewest deletions before a {@link RenewingMap} renews its table. */
const MIN_DELETES = 1_024;

/**
 * A `Map` for entries that come and go all the time (a pending request
 * each), which swaps its table for a fresh copy once it has taken as many
 * deletions as it holds entries — amortised O(1) per deletion.
 *
 * Why: V8 rehashes a `Map` that takes an insert and a delete per operation
 * every few thousand operations. Once the map has lived long enough to be
 * in the old generation, each rehash allocates the new table there, and the
 * obsolete table keeps pointing at every entry it held, as a root of every
 * young-generation collection, until the next full collection. Those
 * entries — with all they reach — are copied and promoted instead of freed,
 * the old generation fills with them, and the process falls into a full
 * collection every few dozen milliseconds (measured on a closed loop of
 * one-request exchanges: 15–22 mark-compacts and 0.5–0.8 M exchanges/s,
 * against 1 and 1.2–1.35 M/s with the table renewed). A fresh copy is
 * young: its rehashes stay in the nursery.
 */
export class RenewingMap<K, V> {
  #map = new Map<K, V>();
  #deletes = 0;

  /** Number of entries. */
  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V): void {
    this.#map.set(key, value);
  }

  /** Removes `key`; answers whether it was there. */
  delete(key: K): boolean {
    if (!this.#map.delete(key)) return false;
    if (++this.#deletes >= MIN_DELETES && this.#deletes >= this.#map.size) {
      // forEach, not new Map(map): the iterator would allocate a [key, value] pair per entry.
      const fresh = new Map<K, V>();
      this.#map.forEach((value, key) => fresh.set(key, value));
      this.#map = fresh;
      this.#deletes = 0;
    }
    return true;
  }
}
