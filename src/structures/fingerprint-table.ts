/**
 * A set of 63-bit fingerprints, each with a time, in typed arrays: adding
 * one retains no object, so the garbage collector never sees the table's
 * contents. Open addressing with linear probing, at most half full; there
 * is no removal — the owner records a later time that reads as gone, and
 * drops whole tables.
 *
 * A fingerprint is two 32-bit halves: `high` picks the slot, so its low bits
 * must be well mixed; `low` must be odd (0 marks a free slot).
 */
export class FingerprintTable {
  /** Two words per slot: the fingerprint's high and low halves. */
  #keys: Int32Array;
  #times: Float64Array;
  #mask: number;
  #size = 0;

  /** @param capacity - Slots; a power of two. The table grows past half full. */
  constructor(capacity: number) {
    this.#keys = new Int32Array(2 * capacity);
    this.#times = new Float64Array(capacity);
    this.#mask = capacity - 1;
  }

  /** Fingerprints added since the table was made or cleared. */
  get size(): number {
    return this.#size;
  }

  /** Slots. */
  get capacity(): number {
    return this.#mask + 1;
  }

  /** The time last recorded for the fingerprint, `undefined` if never added. */
  get(high: number, low: number): number | undefined {
    const slot = this.#find(high, low);
    return slot < 0 ? undefined : this.#times[slot];
  }

  /** Records the fingerprint with `time`, replacing an earlier time. */
  set(high: number, low: number, time: number): void {
    let slot = this.#find(high, low);
    if (slot < 0) {
      if (2 * (this.#size + 1) > this.capacity) {
        this.#grow();
        slot = this.#find(high, low);
      }
      slot = ~slot;
      this.#keys[2 * slot] = high;
      this.#keys[2 * slot + 1] = low;
      this.#size++;
    }
    this.#times[slot] = time;
  }

  /** Empties the table, keeping its slots. */
  clear(): void {
    this.#keys.fill(0);
    this.#size = 0;
  }

  /** The fingerprint's slot if held, else `~slot` of the free slot where it would go. */
  #find(high: number, low: number): number {
    const keys = this.#keys;
    const mask = this.#mask;
    for (let slot = high & mask; ; slot = (slot + 1) & mask) {
      const held = keys[2 * slot + 1]!;
      if (held === 0) return ~slot;
      if (held === low && keys[2 * slot] === high) return slot;
    }
  }

  #grow(): void {
    const keys = this.#keys;
    const times = this.#times;
    const capacity = 2 * this.capacity;
    this.#keys = new Int32Array(2 * capacity);
    this.#times = new Float64Array(capacity);
    this.#mask = capacity - 1;
    for (let old = 0; old < times.length; old++) {
      const high = keys[2 * old]!;
      const low = keys[2 * old + 1]!;
      if (low === 0) continue;
      let slot = high & this.#mask;
      while (this.#keys[2 * slot + 1] !== 0) slot = (slot + 1) & this.#mask;
      this.#keys[2 * slot] = high;
      this.#keys[2 * slot + 1] = low;
      this.#times[slot] = times[old]!;
    }
  }
}
