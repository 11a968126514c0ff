/** Slots per page: a page is the unit memory is given back in. */
const PAGE_BITS = 6;
const PAGE_SIZE = 1 << PAGE_BITS;
const OFFSET_MASK = PAGE_SIZE - 1;

class Page<T> {
  readonly values = new Array<T | undefined>(PAGE_SIZE);
  /** Slots claimed so far; a page hands each out once. */
  claimed = 0;
  /** Slots claimed and not released. */
  live = 0;
}

/**
 * Values in numbered slots, for keys that carry their slot number: a
 * look-up is two array reads, with no hashing, and nothing is rehashed or
 * copied as values come and go.
 *
 * Slots are handed out in order, a page of them at a time, and never again
 * until their page is given back: a page goes once every slot on it was
 * claimed and released, and its number is reused for a fresh page. So a
 * stale key naming a slot finds either nothing or a newer value (its owner
 * tells the two apart), memory follows the values held — an empty table
 * keeps nothing — and a long-lived value pins at most one page.
 */
export class SlotTable<T> {
  readonly #limit: number;
  #pages: (Page<T> | undefined)[] = [];
  /** Numbers of pages given back, for reuse. */
  #spare: number[] = [];
  /** The page slots are claimed from, and its number. */
  #filling: Page<T> | undefined;
  #fillingNumber = 0;
  #size = 0;

  /** @param limit - Most slots; slot numbers stay below it. A multiple of the page size. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Slots claimed and not released. */
  get size(): number {
    return this.#size;
  }

  /** A slot nobody holds, for {@link SlotTable.set}; -1 when all `limit` are held. */
  claim(): number {
    let page = this.#filling;
    if (page === undefined || page.claimed === PAGE_SIZE) {
      const number = this.#spare.pop() ?? this.#pages.length;
      if (number * PAGE_SIZE >= this.#limit) return -1;
      page = this.#filling = this.#pages[number] = new Page<T>();
      this.#fillingNumber = number;
    }
    page.live++;
    this.#size++;
    return (this.#fillingNumber << PAGE_BITS) | page.claimed++;
  }

  /** Puts `value` in a slot {@link SlotTable.claim} answered. */
  set(slot: number, value: T): void {
    this.#pages[slot >>> PAGE_BITS]!.values[slot & OFFSET_MASK] = value;
  }

  /** The value in `slot`, if it holds one. */
  get(slot: number): T | undefined {
    return this.#pages[slot >>> PAGE_BITS]?.values[slot & OFFSET_MASK];
  }

  /** Gives back a claimed slot. */
  release(slot: number): void {
    const number = slot >>> PAGE_BITS;
    const page = this.#pages[number]!;
    page.values[slot & OFFSET_MASK] = undefined;
    if (--this.#size === 0) {
      // Nothing held: start over, and let go of the page list a peak left behind.
      this.#pages = [];
      this.#spare = [];
      this.#filling = undefined;
    } else if (--page.live === 0 && page.claimed === PAGE_SIZE) {
      this.#pages[number] = undefined;
      this.#spare.push(number);
    }
  }
}
