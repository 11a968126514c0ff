/**
 * Entries that expire in the order they were added — every entry of one
 * queue waits about as long, so adding order is expiry order — with O(1)
 * removal by the handle {@link ExpiryQueue.add} answers, or by a key of the
 * caller's (a forward's sequence number). The one expiry mechanism of rrxc:
 * exchange deadlines and the Redis backplane's acknowledgement waits both
 * sit in one, behind a `TimerLane`.
 *
 * Built for queues that take an entry and lose one per operation for as
 * long as they live, so that nothing is copied, and no storage replaced, in
 * the steady state:
 *
 * - entries sit in a ring of arrays, at `handle & mask`: a removed entry
 *   leaves a hole that the head moves past, and the ring's slots are used
 *   again once the head has passed them;
 * - times and keys are in typed arrays, which hold no references for the
 *   garbage collector to trace.
 *
 * A `Map` or `Set` with one insertion and one deletion per operation is
 * rehashed every few thousand operations, and, used as a queue, walks every
 * deleted entry (V8 leaves tombstones) from the front again; once it lives
 * in old space, each new table is allocated there too, and the obsolete one
 * keeps every entry it held alive through every scavenge until the next
 * full collection. An array shifted or sliced from the front copies what it
 * holds, with the same effect on the copy it leaves behind.
 *
 * The ring holds the span from the oldest entry held to the newest, holes
 * included, and doubles when that span fills it. It halves when the span is
 * down to a quarter of it (again, until it is not), but never below
 * {@link SHRINK_FLOOR} slots.
 *
 * @typeParam T - What an entry holds; never `undefined`, which marks a hole.
 */
export class ExpiryQueue<T extends {}> {
  /** The ring, by `handle & #mask`: the value (`undefined`: a hole), its expiry time, its key ({@link NONE}: none). */
  #values: (T | undefined)[];
  #ats: Float64Array;
  /** Made with the first keyed entry: a queue without keys pays nothing for them. */
  #keys: Float64Array | undefined;
  #mask: number;
  /** Handle of the oldest entry held (never a hole), or `#tail` when empty. */
  #head = 0;
  /** Handle of the next entry. */
  #tail = 0;
  #size = 0;
  /**
   * Key → handle, by `key & #indexMask` ({@link NONE}: free). It grows when
   * two keys held at once share a slot and never shrinks: it is as long as
   * the widest span of keys ever held at once.
   */
  #index: Float64Array | undefined;
  #indexMask = 0;

  constructor() {
    this.#values = new Array<T | undefined>(MIN_CAPACITY).fill(undefined);
    this.#ats = new Float64Array(MIN_CAPACITY);
    this.#mask = MIN_CAPACITY - 1;
  }

  /** Number of entries held. */
  get size(): number {
    return this.#size;
  }

  /** When the oldest entry expires; `undefined` when the queue is empty. */
  get nextAt(): number | undefined {
    return this.#head === this.#tail ? undefined : this.#ats[this.#head & this.#mask];
  }

  /**
   * Adds `value`, expiring `at`, which must be no earlier than the expiry of
   * every entry before it; answers its handle, for {@link ExpiryQueue.delete}.
   *
   * @param key - A non-negative integer to find the entry by with
   *   {@link ExpiryQueue.take}; the entry already held under it, if any, is
   *   dropped.
   */
  add(value: T, at: number, key?: number): number {
    if (key !== undefined) this.take(key);
    if (this.#tail - this.#head > this.#mask) this.#resize(2 * this.#values.length);
    const handle = this.#tail++;
    const slot = handle & this.#mask;
    this.#values[slot] = value;
    this.#ats[slot] = at;
    this.#size++;
    if (key !== undefined) this.#file(key, handle);
    else if (this.#keys !== undefined) this.#keys[slot] = NONE;
    return handle;
  }

  /** Removes the entry `add` answered `handle` for; answers its value, `undefined` when it is not held. */
  delete(handle: number): T | undefined {
    return handle >= this.#head && handle < this.#tail ? this.#remove(handle) : undefined;
  }

  /** Removes the entry added under `key`; answers its value, `undefined` when none is held. */
  take(key: number): T | undefined {
    const index = this.#index;
    if (index === undefined) return undefined;
    const handle = index[key & this.#indexMask]!;
    if (handle === NONE || this.#keys![handle & this.#mask] !== key) return undefined;
    return this.#remove(handle);
  }

  /** Removes the oldest entry if it has expired by `now`; answers its value, `undefined` when none has. */
  shift(now: number): T | undefined {
    if (this.#head === this.#tail || this.#ats[this.#head & this.#mask]! > now) return undefined;
    return this.#remove(this.#head);
  }

  /** Removes every entry; answers their values, oldest first. */
  clear(): T[] {
    const values: T[] = [];
    while (this.#head !== this.#tail) values.push(this.#remove(this.#head)!);
    return values;
  }

  #remove(handle: number): T | undefined {
    const slot = handle & this.#mask;
    const value = this.#values[slot];
    if (value === undefined) return undefined;
    this.#values[slot] = undefined;
    this.#size--;
    const key = this.#keys?.[slot] ?? NONE;
    if (key !== NONE) {
      this.#index![key & this.#indexMask] = NONE;
      // Else the slot keeps the key until the ring reuses it, and an index
      // growth while the new entry is being filed takes that stale key for a
      // second live entry under it: no index length would ever place both.
      this.#keys![slot] = NONE;
    }
    if (handle === this.#head) this.#advance();
    return value;
  }

  /**
   * Moves the head past the holes behind a removed oldest entry; once the
   * span is down to a quarter of the ring, halves the ring as often as that
   * still holds. At once, not a halving per removal: a queue emptied from
   * the newest end moves its head past every hole in one step, and a lane
   * kept for its next target would otherwise hold half the burst's ring.
   */
  #advance(): void {
    const values = this.#values;
    const mask = this.#mask;
    let head = this.#head + 1;
    while (head < this.#tail && values[head & mask] === undefined) head++;
    this.#head = head;
    const span = this.#tail - head;
    if (values.length <= SHRINK_FLOOR || 4 * span > values.length) return;
    let capacity = values.length / 2;
    while (capacity > SHRINK_FLOOR && 4 * span <= capacity) capacity /= 2;
    this.#resize(capacity);
  }

  /** Files the entry `handle` under `key`, doubling the index until `key` has a slot of its own. */
  #file(key: number, handle: number): void {
    if (this.#index === undefined) {
      this.#index = new Float64Array(MIN_CAPACITY).fill(NONE);
      this.#indexMask = MIN_CAPACITY - 1;
      this.#keys = new Float64Array(this.#values.length).fill(NONE);
    }
    while (this.#index[key & this.#indexMask] !== NONE) this.#growIndex();
    this.#index[key & this.#indexMask] = handle;
    this.#keys![handle & this.#mask] = key;
  }

  #growIndex(): void {
    const keys = this.#keys!;
    for (let length = 2 * this.#index!.length; ; length *= 2) {
      const index = new Float64Array(length).fill(NONE);
      const mask = length - 1;
      let placed = true;
      for (let handle = this.#head; handle < this.#tail && placed; handle++) {
        const key = keys[handle & this.#mask]!;
        if (key === NONE || this.#values[handle & this.#mask] === undefined) continue;
        if (index[key & mask] === NONE) index[key & mask] = handle;
        else placed = false;
      }
      if (placed) {
        this.#index = index;
        this.#indexMask = mask;
        return;
      }
    }
  }

  /** Moves every entry into a ring of `capacity` slots; each keeps its handle. */
  #resize(capacity: number): void {
    const values = this.#values;
    const ats = this.#ats;
    const keys = this.#keys;
    const mask = this.#mask;
    this.#values = new Array<T | undefined>(capacity).fill(undefined);
    this.#ats = new Float64Array(capacity);
    this.#keys = keys === undefined ? undefined : new Float64Array(capacity).fill(NONE);
    this.#mask = capacity - 1;
    for (let handle = this.#head; handle < this.#tail; handle++) {
      const from = handle & mask;
      const value = values[from];
      if (value === undefined) continue;
      const to = handle & this.#mask;
      this.#values[to] = value;
      this.#ats[to] = ats[from]!;
      if (keys !== undefined) this.#keys![to] = keys[from]!;
      // The old array is garbage now, but would hold on to its values until the next full collection.
      values[from] = undefined;
    }
  }
}

/** Slots of a new ring: its typed array stays small enough for V8 to keep it inside the object's own allocation. */
const MIN_CAPACITY = 8;

/**
 * A ring this long or shorter is never halved. Up to here its arrays take at
 * most 24 KB, less than a queue whose load swings back and forth would
 * spend re-allocating them; past it, a burst's memory is given back once
 * the queue has drained to a quarter of the span. The only compaction
 * threshold of the expiry queue.
 */
const SHRINK_FLOOR = 1_024;

/** No key (in the ring), no entry (in the index): keys and handles are never negative. */
const NONE = -1;
