import { CapacityError, CorrelationIdConflictError } from './errors.js';
import { checkId } from './options.js';
import { RenewingMap } from './renewing-map.js';
import { secureId } from './secure-id.js';

/** How often a generator may hand out an already pending ID before we give up on it. */
const MAX_ID_ATTEMPTS = 8;

/**
 * Correlation ID → pending request: the one `Map` every reply is routed
 * through. Registering and routing are a single hash lookup each, whatever
 * the number of open exchanges; nothing here scans.
 */
export class CorrelationIndex<Entry> {
  readonly #entries = new RenewingMap<string, Entry>();
  readonly #limit: number;
  /** The application's generator (`newId`, or the backplane's); `undefined`: {@link secureId}. */
  readonly #generate: (() => string) | undefined;
  readonly #maxIdLength: number;

  /**
   * @param limit - Most entries (`maxPendingRequests`).
   * @param generate - ID generator (`newId`), nanoid when absent.
   * @param maxIdLength - Longest ID a custom generator may return.
   */
  constructor(limit: number, generate: (() => string) | undefined, maxIdLength: number) {
    this.#limit = limit;
    this.#generate = generate;
    this.#maxIdLength = maxIdLength;
  }

  /** Number of pending entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry pending under `id`. */
  get(id: string): Entry | undefined {
    return this.#entries.get(id);
  }

  /** Whether `id` is pending. */
  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /**
   * Adds an entry under `id`.
   * @throws {@link CapacityError} when the index is full.
   * @throws {@link CorrelationIdConflictError} when `id` is already pending.
   */
  add(id: string, entry: Entry): void {
    this.#checkCapacity();
    if (this.#entries.has(id)) throw new CorrelationIdConflictError(id);
    this.#entries.set(id, entry);
  }

  /**
   * Adds an entry under an ID that is not pending — one {@link newId} just
   * made — without the look-up `add` does: under an ID that is pending, it
   * would replace that entry.
   * @throws {@link CapacityError} when the index is full.
   */
  addFresh(id: string, entry: Entry): void {
    this.#checkCapacity();
    this.#entries.set(id, entry);
  }

  /** Removes `id`. */
  delete(id: string): void {
    this.#entries.delete(id);
  }

  /**
   * A fresh ID, unique among the pending ones.
   * @throws {@link CorrelationIdConflictError} when the generator keeps returning pending IDs.
   */
  newId(): string {
    const generate = this.#generate;
    // 126 random bits: a clash, which would replace a pending entry, is not
    // worth a look-up per request.
    if (generate === undefined) return secureId();
    let id = '';
    for (let attempt = 0; attempt < MAX_ID_ATTEMPTS; attempt++) {
      id = generate();
      checkId(id, 'the ID returned by newId()', this.#maxIdLength);
      // A string built by concatenation is a rope of cons-strings that V8
      // keeps as is (a 21-character one: 320 bytes instead of 40). Reading a
      // character flattens it in place, and the GC then drops the rope.
      id.charCodeAt(0);
      if (!this.#entries.has(id)) return id;
    }
    throw new CorrelationIdConflictError(id);
  }

  #checkCapacity(): void {
    if (this.#entries.size >= this.#limit) throw new CapacityError(this.#limit);
  }
}
