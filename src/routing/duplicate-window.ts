import { getRandomValues } from 'node:crypto';
import type { Clock } from '../clock.js';
import { FingerprintTable } from '../structures/fingerprint-table.js';
import { bitsAt, slotOf } from './secure-id.js';

/**
 * Answered IDs of ended exchanges, remembered for `duplicateWindow` ms so
 * that a redelivered reply is reported `duplicate` rather than `unmatched`.
 * Bounded on its own (`maxDuplicates`), apart from the tag store, so that a
 * flood of answered IDs can never evict a rollback tag.
 *
 * Two generations of ID → answer time: new answers go into the current one;
 * when it holds half the bound, or is older than the window, it becomes the
 * previous one and the previous one is dropped whole. `has()` checks the
 * answer time, so it is exact for every ID still held; under the bound the
 * oldest half goes first.
 *
 * Each generation holds fingerprints in typed arrays, not a `Map` of the
 * ID strings. Every answered ID lives here for up to a minute: long enough to
 * outlive the young generation of V8's heap, short enough to die soon after
 * in the old one — the costliest lifetime an object can have. Held as
 * strings, they made the garbage collector the largest cost of a
 * one-request exchange (the window doubled its time); as fingerprints in
 * typed arrays the collector never sees them. Only the application's own
 * answered IDs are added, so outside input can neither fill the tables nor
 * crowd their probes.
 *
 * A generation writes its answers down in order, and builds its table only
 * when a look-up comes: most replies find their exchange, so most
 * generations are dropped unread, and a table written at random costs a
 * cache miss or two per answer where the log's appends cost none.
 *
 * An ID rrxc made is random: its characters, folded into 63 bits, are its
 * fingerprint. Any other ID is hashed (seeded MurmurHash3, 63 bits). Two
 * IDs share a fingerprint with probability 2⁻⁶³ per pair: with 100 000 IDs
 * held (both generations probed), an ID that was never added is taken for
 * one of them with probability about 2 × 10⁻¹⁴ per look-up — less than
 * once in 10¹³. (Whoever sees a generated ID can make
 * another string with its fingerprint — and could as well send the ID
 * itself.)
 */
export class DuplicateWindow {
  readonly #windowMs: number;
  readonly #generationSize: number;
  readonly #clock: Clock;
  readonly #epoch: number;
  readonly #seedHigh: number;
  readonly #seedLow: number;
  #current = new Generation(MIN_CAPACITY);
  #previous = new Generation(MIN_CAPACITY);

  /**
   * @param windowMs - How long an answered ID is remembered; `0` turns the window off.
   * @param maxIds - Most IDs remembered; the oldest go first.
   * @param clock - Time source for expiry.
   * @param epoch - Clock time that answer times are given relative to.
   */
  constructor(windowMs: number, maxIds: number, clock: Clock, epoch: number) {
    this.#windowMs = windowMs;
    this.#generationSize = Math.max(1, Math.floor(maxIds / 2));
    this.#clock = clock;
    this.#epoch = epoch;
    const [seedHigh, seedLow] = getRandomValues(new Int32Array(2));
    this.#seedHigh = seedHigh!;
    this.#seedLow = seedLow!;
  }

  /**
   * Remembers that `id` was answered.
   * @param at - When, relative to the epoch: its exchange's end.
   */
  add(id: string, at: number): void {
    if (this.#windowMs === 0) return;
    this.#hash(id);
    this.#append(at, at);
    this.#current.hashed = true;
  }

  /**
   * Same as {@link add}, for an ID that rrxc generated: its characters are
   * its fingerprint.
   * @param slot - The slot the ID names (`slotOf`), which the caller has decoded already.
   */
  addGenerated(id: string, slot: number, at: number): void {
    if (this.#windowMs === 0) return;
    fingerprintGenerated(id, slot);
    this.#append(at, at);
    this.#current.generated = true;
  }

  /** Whether `id` was answered within the window. */
  has(id: string): boolean {
    if (this.#windowMs === 0) return false;
    if (this.#holdsGenerated(id) && this.#held()) return true;
    if (!this.#current.hashed && !this.#previous.hashed) return false;
    this.#hash(id);
    return this.#held();
  }

  /**
   * Forgets `id` as answered: it was registered again and ended unanswered
   * `at`. Written down as a later answer that reads as none, so that no
   * table is built for it.
   */
  delete(id: string, at: number): void {
    if (this.#windowMs === 0) return;
    // Either way it may have been added: a generated ID can come back as one the caller gives.
    if (this.#holdsGenerated(id)) this.#append(at, FORGOTTEN);
    if (!this.#current.hashed && !this.#previous.hashed) return;
    this.#hash(id);
    this.#append(at, FORGOTTEN);
  }

  /** Forgets every ID, and the memory that held them. */
  clear(): void {
    this.#current = new Generation(MIN_CAPACITY);
    this.#previous = new Generation(MIN_CAPACITY);
  }

  /**
   * Appends the last fingerprint with `time` (its answer time, or
   * {@link FORGOTTEN}), written `at`. Only answers count toward the
   * generation's size: forgetting one must not push out others.
   */
  #append(at: number, time: number): void {
    let current = this.#current;
    if (current.answers >= this.#generationSize || (current.size > 0 && at - current.since > this.#windowMs)) {
      this.#rotate();
      current = this.#current;
    }
    if (current.size === 0) current.since = at;
    current.append(fingerprintHigh, fingerprintLow, time);
  }

  /** Sets the last fingerprint to that of `id` if it may be a generated one held here; answers whether. */
  #holdsGenerated(id: string): boolean {
    if (!this.#current.generated && !this.#previous.generated) return false;
    const slot = slotOf(id);
    return slot >= 0 && fingerprintGenerated(id, slot);
  }

  /** Whether the last fingerprint was answered within the window. */
  #held(): boolean {
    // The current generation's entry is the later one, a forgetting included.
    const at = this.#current.get(fingerprintHigh, fingerprintLow) ?? this.#previous.get(fingerprintHigh, fingerprintLow);
    // Kept while its age is at most the window, as lru-cache's TTLs are.
    return at !== undefined && this.#clock.now() - this.#epoch - at <= this.#windowMs;
  }

  /**
   * The current generation becomes the previous one; the dropped one is
   * emptied and reused, unless the traffic the closing generation saw calls
   * for another size.
   */
  #rotate(): void {
    const dropped = this.#previous;
    this.#previous = this.#current;
    const capacity = capacityFor(this.#previous.size);
    if (dropped.capacity === capacity) {
      dropped.clear();
      this.#current = dropped;
    } else {
      this.#current = new Generation(capacity);
    }
  }

  /**
   * Two 32-bit MurmurHash3 hashes of `id` (two UTF-16 code units per
   * block), with different seeds and block constants, as the fingerprint.
   */
  #hash(id: string): void {
    let high = this.#seedHigh;
    let low = this.#seedLow;
    const length = id.length;
    for (let i = 0; i < length; i += 2) {
      const block = id.charCodeAt(i) | (i + 1 < length ? id.charCodeAt(i + 1) << 16 : 0);
      high = mix(high, block, 0xcc9e2d51, 0x1b873593);
      low = mix(low, block, 0x85ebca6b, 0xc2b2ae35);
    }
    fingerprintHigh = finalise(high ^ length);
    fingerprintLow = finalise(low ^ length) | 1;
  }
}

/**
 * One generation's answers: fingerprints and times appended in the order
 * they came, and a {@link FingerprintTable} of them brought up to date by
 * the first look-up after appends.
 */
class Generation {
  /** Two words per answer: the fingerprint's high and low halves. */
  #fingerprints: Int32Array;
  #times: Float64Array;
  #size = 0;
  /** Records that are answers, not forgettings. */
  answers = 0;
  /** Records already in `#table`. */
  #indexed = 0;
  /** Made by the first look-up. */
  #table: FingerprintTable | undefined;
  /** When the first entry was appended. */
  since = 0;
  /** Whether an answer's fingerprint is a hash: until one is, look-ups skip hashing. */
  hashed = false;
  /** Whether an answer's fingerprint is a generated ID's: until one is, look-ups skip reading one. */
  generated = false;

  /** @param capacity - Answers the log holds before it grows; a power of two. */
  constructor(capacity: number) {
    this.#fingerprints = new Int32Array(2 * capacity);
    this.#times = new Float64Array(capacity);
  }

  /** Answers appended (repeated fingerprints included). */
  get size(): number {
    return this.#size;
  }

  /** Answers the log holds before it grows. */
  get capacity(): number {
    return this.#times.length;
  }

  append(high: number, low: number, time: number): void {
    if (time !== FORGOTTEN) this.answers++;
    const at = this.#size++;
    if (at === this.#times.length) this.#grow();
    this.#fingerprints[2 * at] = high;
    this.#fingerprints[2 * at + 1] = low;
    this.#times[at] = time;
  }

  /** The latest time appended with the fingerprint, `undefined` if none was. */
  get(high: number, low: number): number | undefined {
    return this.#index().get(high, low);
  }

  /** Empties the generation, keeping its memory. */
  clear(): void {
    this.#size = this.#indexed = this.answers = 0;
    this.#table?.clear();
    this.hashed = this.generated = false;
  }

  /** The table, with every answer appended so far. */
  #index(): FingerprintTable {
    const table = (this.#table ??= new FingerprintTable(2 * this.capacity));
    for (; this.#indexed < this.#size; this.#indexed++) {
      const at = this.#indexed;
      table.set(this.#fingerprints[2 * at]!, this.#fingerprints[2 * at + 1]!, this.#times[at]!);
    }
    return table;
  }

  #grow(): void {
    const fingerprints = new Int32Array(2 * this.#fingerprints.length);
    fingerprints.set(this.#fingerprints);
    this.#fingerprints = fingerprints;
    const times = new Float64Array(2 * this.#times.length);
    times.set(this.#times);
    this.#times = times;
  }
}

/** Answers a generation that has seen nothing yet holds before its log grows. */
const MIN_CAPACITY = 32;

/** The time of an entry that forgets an answer: older than any window. */
const FORGOTTEN = -Infinity;

/** The capacity that holds `size` answers. */
function capacityFor(size: number): number {
  let capacity = MIN_CAPACITY;
  while (capacity < size) capacity *= 2;
  return capacity;
}

// The last fingerprint, as two module-level numbers rather than a returned
// pair: the hot path allocates nothing.
let fingerprintHigh = 0;
let fingerprintLow = 0;

/**
 * Sets the last fingerprint to that of an ID shaped as rrxc makes them — ending in 21
 * characters of the alphabet, `slot` the one its last four name — and answers whether
 * it has that shape. Every character counts: the random ones keep the
 * halves' low bits random (`high` picks the table slot), and an ID with
 * any one character changed reads differently.
 */
function fingerprintGenerated(id: string, slot: number): boolean {
  // The random part is the last 21 characters, after any instance prefix.
  const at = id.length - 21;
  const a = bitsAt(id, at);
  const b = bitsAt(id, at + 5);
  const c = bitsAt(id, at + 10);
  const d = bitsAt(id, at + 15);
  if ((a | b | c | d) < 0) return false;
  fingerprintHigh = a ^ (c << 2);
  // The last character is the slot's low six bits.
  fingerprintLow = ((b ^ (d << 1) ^ ((slot & 63) << 25)) << 1) | 1;
  return true;
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
