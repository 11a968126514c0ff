/**
 * A set of strings, each with a time, kept as 63-bit fingerprints in typed
 * arrays: adding a string retains no object, so the garbage collector never
 * sees the table's contents. Open addressing with linear probing, at most
 * half full; there is no removal — a removed string's time becomes
 * `-Infinity` — because the owner drops whole tables instead.
 *
 * Two strings share a fingerprint with probability 2⁻⁶³ per pair: with
 * 100 000 strings held, a string that was never added is taken for one of
 * them about once in 10¹⁴ look-ups. The seeds are random (from `crypto`),
 * drawn by the owner: the two tables of one duplicate window share theirs.
 */
export class FingerprintTable {
  /** Two words per slot: the fingerprint's high and low halves (low half odd when used, 0 when free). */
  #keys: Int32Array;
  #times: Float64Array;
  #mask: number;
  #size = 0;
  readonly #seedHigh: number;
  readonly #seedLow: number;

  /**
   * @param capacity - Slots; a power of two. The table grows past half full.
   * @param seeds - Two random 32-bit seeds.
   */
  constructor(capacity: number, seeds: Int32Array) {
    this.#keys = new Int32Array(2 * capacity);
    this.#times = new Float64Array(capacity);
    this.#mask = capacity - 1;
    this.#seedHigh = seeds[0]!;
    this.#seedLow = seeds[1]!;
  }

  /** Strings added since the table was made or cleared (removed ones included). */
  get size(): number {
    return this.#size;
  }

  /** Slots. */
  get capacity(): number {
    return this.#mask + 1;
  }

  /** The time recorded for `key`, `-Infinity` if it was removed, `undefined` if never added. */
  get(key: string): number | undefined {
    const slot = this.#find(key);
    return slot < 0 ? undefined : this.#times[slot];
  }

  /** Records `key` with `time`, replacing an earlier time. */
  set(key: string, time: number): void {
    let slot = this.#find(key);
    if (slot < 0) {
      if (2 * (this.#size + 1) > this.capacity) {
        this.#grow();
        slot = this.#find(key);
      }
      slot = ~slot;
      this.#keys[2 * slot] = hashHigh;
      this.#keys[2 * slot + 1] = hashLow;
      this.#size++;
    }
    this.#times[slot] = time;
  }

  /** Makes `key` read as removed, if it is held. */
  remove(key: string): void {
    const slot = this.#find(key);
    if (slot >= 0) this.#times[slot] = -Infinity;
  }

  /** Empties the table, keeping its slots. */
  clear(): void {
    this.#keys.fill(0);
    this.#size = 0;
  }

  /**
   * Hashes `key` into {@link hashHigh} and {@link hashLow}, then probes for
   * it: its slot if held, else `~slot` of the free slot where it would go.
   */
  #find(key: string): number {
    hash(key, this.#seedHigh, this.#seedLow);
    const keys = this.#keys;
    const mask = this.#mask;
    for (let slot = hashHigh & mask; ; slot = (slot + 1) & mask) {
      const low = keys[2 * slot + 1]!;
      if (low === 0) return ~slot;
      if (low === hashLow && keys[2 * slot] === hashHigh) return slot;
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

// The last hash, as two module-level numbers rather than a returned pair: the
// hot path allocates nothing.
let hashHigh = 0;
let hashLow = 0;

/**
 * Two 32-bit MurmurHash3 hashes of `key` (two UTF-16 code units per block),
 * with different seeds and block constants, into {@link hashHigh} and
 * {@link hashLow}; the latter forced odd, so that 0 marks a free slot.
 */
function hash(key: string, seedHigh: number, seedLow: number): void {
  let high = seedHigh;
  let low = seedLow;
  const length = key.length;
  for (let i = 0; i < length; i += 2) {
    const block = key.charCodeAt(i) | (i + 1 < length ? key.charCodeAt(i + 1) << 16 : 0);
    high = mix(high, block, 0xcc9e2d51, 0x1b873593);
    low = mix(low, block, 0x85ebca6b, 0xc2b2ae35);
  }
  hashHigh = finalise(high ^ length);
  hashLow = finalise(low ^ length) | 1;
}

function mix(h: number, block: number, c1: number, c2: number): number {
  let k = Math.imul(block, c1);
  k = Math.imul((k << 15) | (k >>> 17), c2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finalise(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}
