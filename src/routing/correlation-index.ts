import { CapacityError, CorrelationIdConflictError } from '../errors.js';
import { checkId } from '../_validate.js';
import { RenewingMap } from '../structures/renewing-map.js';
import { SlotTable } from '../structures/slot-table.js';
import { SLOTS, secureId, slotOf, slottedId } from './secure-id.js';

/** How often a generator may hand out an already pending ID before we give up on it. */
const MAX_ID_ATTEMPTS = 8;

/** What the index holds: anything that knows its own ID. */
export interface Keyed {
  readonly correlationId: string;
}

/**
 * Correlation ID → pending request: where every reply is routed. A request
 * registered without an ID gets one that names its slot in a
 * {@link SlotTable} — routing its reply is two array reads and a string
 * comparison; IDs given by the caller or the application's generator go in
 * a `Map`. Either way one look-up, whatever the number of open exchanges;
 * nothing here scans.
 */
export class CorrelationIndex<Entry extends Keyed> {
  readonly #slotted: SlotTable<Entry>;
  /** Entries under IDs that name no slot of ours. */
  readonly #named = new RenewingMap<string, Entry>();
  readonly #limit: number;
  /** The application's generator (`newId`); `undefined`: {@link secureId}. */
  readonly #generate: (() => string) | undefined;
  /** Put before every ID made here without `newId` (a backplane's instance prefix). */
  readonly #prefix: string;
  readonly #maxIdLength: number;
  /** The slot {@link claimId} reserved for the next {@link addClaimed}; -1 for none. */
  #claimed = -1;

  /**
   * @param limit - Most entries (`maxPendingRequests`).
   * @param generate - ID generator (`newId`), nanoid-like when absent.
   * @param prefix - Put before the IDs made when `generate` is absent.
   * @param maxIdLength - Longest ID a custom generator may return.
   * @param slots - Most entries under IDs that name their slot; those past it get plain random IDs, in the `Map`.
   */
  constructor(limit: number, generate: (() => string) | undefined, prefix: string, maxIdLength: number, slots = SLOTS) {
    this.#prefix = prefix;
    this.#slotted = new SlotTable(slots);
    this.#limit = limit;
    this.#generate = generate;
    this.#maxIdLength = maxIdLength;
  }

  /** Number of pending entries. */
  get size(): number {
    return this.#slotted.size + this.#named.size;
  }

  /** The entry pending under `id`. */
  get(id: string): Entry | undefined {
    const slot = slotOf(id);
    if (slot >= 0) {
      const entry = this.#slotted.get(slot);
      if (entry !== undefined && entry.correlationId === id) return entry;
    }
    return this.#named.size === 0 ? undefined : this.#named.get(id);
  }

  /** Whether `id` is pending. */
  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  /**
   * Adds an entry under an ID the caller chose.
   * @throws {@link CapacityError} when the index is full.
   * @throws {@link CorrelationIdConflictError} when `id` is already pending.
   */
  add(id: string, entry: Entry): void {
    this.#checkCapacity();
    if (this.has(id)) throw new CorrelationIdConflictError(id);
    this.#named.set(id, entry);
  }

  /**
   * The ID for the entry about to be added with {@link addClaimed} — nothing
   * may come between the two: an ID naming a slot reserved for it, or the
   * application generator's.
   * @throws {@link CapacityError} when the index is full.
   * @throws {@link CorrelationIdConflictError} when the generator keeps returning pending IDs.
   */
  claimId(): string {
    this.#checkCapacity();
    if (this.#generate !== undefined) return this.newId();
    const slot = this.#slotted.claim();
    // Every slot held: a plain random ID, kept in the Map. 126 random bits:
    // a clash, which would replace the pending entry, is not worth a
    // look-up per request.
    if (slot < 0) return this.#prefix + secureId();
    this.#claimed = slot;
    return this.#prefix + slottedId(slot);
  }

  /** Adds `entry` under the ID {@link claimId} just answered. */
  addClaimed(id: string, entry: Entry): void {
    const slot = this.#claimed;
    if (slot < 0) this.#named.set(id, entry);
    else {
      this.#slotted.set(slot, entry);
      this.#claimed = -1;
    }
  }

  /**
   * Removes `entry`, whose exchange ended; answers the slot it held, or -1
   * for an entry under an ID that names none of ours — what the duplicate
   * window needs to know to remember the ID.
   */
  release(entry: Entry): number {
    const id = entry.correlationId;
    const slot = slotOf(id);
    if (slot >= 0 && this.#slotted.get(slot) === entry) {
      this.#slotted.release(slot);
      return slot;
    }
    this.#named.delete(id);
    return -1;
  }

  /**
   * A fresh ID, unique among the pending ones; it names no slot.
   * @throws {@link CorrelationIdConflictError} when the generator keeps returning pending IDs.
   */
  newId(): string {
    const generate = this.#generate;
    // 126 random bits: a clash with a pending ID is not worth a look-up per
    // ID (registering it would still find the conflict).
    if (generate === undefined) return this.#prefix + secureId();
    let id = '';
    for (let attempt = 0; attempt < MAX_ID_ATTEMPTS; attempt++) {
      id = generate();
      checkId(id, 'the ID returned by newId()', this.#maxIdLength);
      // A string built by concatenation is a rope of cons-strings that V8
      // keeps as is (a 21-character one: 320 bytes instead of 40). Reading a
      // character flattens it in place, and the GC then drops the rope.
      id.charCodeAt(0);
      if (!this.has(id)) return id;
    }
    throw new CorrelationIdConflictError(id);
  }

  #checkCapacity(): void {
    if (this.size >= this.#limit) throw new CapacityError(this.#limit);
  }
}
