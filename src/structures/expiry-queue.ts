/**
 * Waits for acknowledgements, by forward sequence number, that expire in the
 * order they were armed (each lasts the same `retryInterval`).
 *
 * Built for a backplane that arms and ends a wait per forwarded reply for as
 * long as it lives, so that nothing it holds is copied, and none of its
 * storage is replaced, in the steady state:
 *
 * - a wait sits in slot `seq & mask` of arrays allocated once (and doubled
 *   only when two waits collide, which takes a wait older than the table is
 *   long);
 * - the expiry order is a ring of numbers (sequence number and arming
 *   number) in typed arrays, which hold no references.
 *
 * A `Map` with one insertion and one deletion per reply is rehashed every
 * few thousand replies; once it lives in old space, each new table is
 * allocated there too, and the obsolete one keeps every wait it held (its
 * callback, the forward's promise, its strings) alive through every
 * scavenge until the next full collection. Those survivors are what made
 * scavenges long.
 */
export class Waits<T> {
  /** By slot: the waiting value, its sequence number, its arming number (0: empty). */
  #values: (T | undefined)[];
  #seqs: Float64Array;
  #arms: Float64Array;
  #mask: number;
  /** Expiry order: a ring of (sequence number, arming number, expiry). */
  #queueSeqs: Float64Array;
  #queueArms: Float64Array;
  #queueAts: Float64Array;
  #head = 0;
  #length = 0;
  #armed = 0;
  #size = 0;

  constructor(capacity = 1024) {
    const size = 2 ** Math.ceil(Math.log2(Math.max(2, capacity)));
    this.#values = new Array<T | undefined>(size).fill(undefined);
    this.#seqs = new Float64Array(size);
    this.#arms = new Float64Array(size);
    this.#mask = size - 1;
    this.#queueSeqs = new Float64Array(size);
    this.#queueArms = new Float64Array(size);
    this.#queueAts = new Float64Array(size);
  }

  /** Number of waits held. */
  get size(): number {
    return this.#size;
  }

  /** Starts a wait for `seq` (a non-negative integer; replacing its wait, if any) that expires at `at`, no earlier than the waits before it. */
  add(seq: number, at: number, value: T): void {
    this.take(seq);
    while (this.#arms[seq & this.#mask] !== 0) this.#grow();
    const slot = seq & this.#mask;
    const arm = ++this.#armed;
    this.#values[slot] = value;
    this.#seqs[slot] = seq;
    this.#arms[slot] = arm;
    this.#size++;
    if (this.#length === this.#queueSeqs.length) this.#growQueue();
    const tail = (this.#head + this.#length++) & (this.#queueSeqs.length - 1);
    this.#queueSeqs[tail] = seq;
    this.#queueArms[tail] = arm;
    this.#queueAts[tail] = at;
  }

  /** Ends the wait for `seq` and answers its value; `undefined` when it does not wait. */
  take(seq: number): T | undefined {
    const slot = seq & this.#mask;
    if (this.#arms[slot] === 0 || this.#seqs[slot] !== seq) return undefined;
    return this.#clear(slot);
  }

  /**
   * Ends the waits that expire at `now` or before, appending their values
   * to `into`; answers when the next one expires (`undefined`: none left).
   */
  expire(now: number, into: T[]): number | undefined {
    const mask = this.#queueSeqs.length - 1;
    while (this.#length > 0) {
      const head = this.#head;
      const slot = this.#queueSeqs[head]! & this.#mask;
      // Waits that already ended (or were armed again) leave their entry behind: skipped here.
      const live = this.#arms[slot] === this.#queueArms[head];
      if (live && this.#queueAts[head]! > now) return this.#queueAts[head];
      this.#head = (head + 1) & mask;
      this.#length--;
      if (live) into.push(this.#clear(slot)!);
    }
    return undefined;
  }

  /** Ends every wait and answers their values. */
  clear(): T[] {
    const all: T[] = [];
    for (let slot = 0; slot <= this.#mask; slot++) if (this.#arms[slot] !== 0) all.push(this.#clear(slot)!);
    this.#head = 0;
    this.#length = 0;
    return all;
  }

  #clear(slot: number): T | undefined {
    const value = this.#values[slot];
    this.#values[slot] = undefined;
    this.#arms[slot] = 0;
    this.#size--;
    return value;
  }

  /** Doubles the slots (two waits collided) and moves every wait to its new slot. */
  #grow(): void {
    const values = this.#values;
    const seqs = this.#seqs;
    const arms = this.#arms;
    const size = values.length * 2;
    this.#values = new Array<T | undefined>(size).fill(undefined);
    this.#seqs = new Float64Array(size);
    this.#arms = new Float64Array(size);
    this.#mask = size - 1;
    for (let slot = 0; slot < values.length; slot++) {
      if (arms[slot] === 0) continue;
      const to = seqs[slot]! & this.#mask;
      this.#values[to] = values[slot];
      this.#seqs[to] = seqs[slot]!;
      this.#arms[to] = arms[slot]!;
      // The old array is garbage now, but holds on to these values until the next full collection.
      values[slot] = undefined;
    }
  }

  /** Doubles the expiry ring, which is full. */
  #growQueue(): void {
    const length = this.#queueSeqs.length;
    const grown = (from: Float64Array): Float64Array => {
      const to = new Float64Array(length * 2);
      for (let i = 0; i < length; i++) to[i] = from[(this.#head + i) & (length - 1)]!;
      return to;
    };
    this.#queueSeqs = grown(this.#queueSeqs);
    this.#queueArms = grown(this.#queueArms);
    this.#queueAts = grown(this.#queueAts);
    this.#head = 0;
  }
}
