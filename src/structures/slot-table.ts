/** Slots per page: a page is the unit memory is given back in. */
const PAGE_BITS = 6;
const PAGE_SIZE = 1 << PAGE_BITS;
const OFFSET_MASK = PAGE_SIZE - 1;
/** Emptied pages kept for reuse rather than given back: steady traffic allocates no pages. */
const SPARE_PAGES = 4;

class Page<T> {
  readonly values = new Array<T | undefined>(PAGE_SIZE);
  /** Free slots as bits: `freeLow` for offsets 0–31, `freeHigh` for 32–63. */
  freeLow = -1;
  freeHigh = -1;
  live = 0;
  /** Index in the table's pages with room; -1 while full. */
  roomIndex = -1;

  constructor(readonly number: number) {}
}

/**
 * Values in numbered slots, for keys that carry their slot number: a
 * look-up is two array reads, with no hashing, and nothing is rehashed or
 * copied as values come and go.
 *
 * Slots live on pages of 64. A claim takes the lowest free slot of a page
 * that has room; a released slot can be claimed again at once — a stale key
 * naming it finds a newer value, which its owner tells apart by comparing
 * keys. A page that empties is given back (a few are kept for reuse) and
 * its number reused, so memory follows the values held, and a long-lived
 * value holds on to one slot, not a page.
 */
export class SlotTable<T> {
  readonly #limit: number;
  #pages: (Page<T> | undefined)[] = [];
  /** Numbers of pages given back, for reuse. */
  #spare: number[] = [];
  /** Pages with a free slot; claims come from the last. */
  #roomy: Page<T>[] = [];
  /** Pages on `#roomy` that hold nothing. */
  #empty = 0;
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
    let page = this.#roomy[this.#roomy.length - 1];
    if (page === undefined) {
      const number = this.#spare.pop() ?? this.#pages.length;
      if (number * PAGE_SIZE >= this.#limit) return -1;
      page = this.#pages[number] = new Page<T>(number);
      this.#addRoom(page);
      this.#empty++;
    }
    let offset: number;
    if (page.freeLow !== 0) {
      const bit = page.freeLow & -page.freeLow;
      page.freeLow ^= bit;
      offset = 31 - Math.clz32(bit);
    } else {
      const bit = page.freeHigh & -page.freeHigh;
      page.freeHigh ^= bit;
      offset = 63 - Math.clz32(bit);
    }
    if (page.live++ === 0) this.#empty--;
    if (page.freeLow === 0 && page.freeHigh === 0) this.#removeRoom(page);
    this.#size++;
    return (page.number << PAGE_BITS) | offset;
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
    const page = this.#pages[slot >>> PAGE_BITS]!;
    const offset = slot & OFFSET_MASK;
    page.values[offset] = undefined;
    if (offset < 32) page.freeLow |= 1 << offset;
    else page.freeHigh |= 1 << (offset - 32);
    this.#size--;
    if (page.roomIndex < 0) this.#addRoom(page);
    if (--page.live > 0) return;
    if (this.#size === 0) {
      // Nothing held: start over, and let go of the page list a peak left behind.
      this.#pages = [];
      this.#spare = [];
      this.#roomy = [];
      this.#empty = 0;
    } else if (this.#empty < SPARE_PAGES) {
      this.#empty++;
    } else {
      this.#removeRoom(page);
      this.#pages[page.number] = undefined;
      this.#spare.push(page.number);
    }
  }

  #addRoom(page: Page<T>): void {
    page.roomIndex = this.#roomy.push(page) - 1;
  }

  #removeRoom(page: Page<T>): void {
    const last = this.#roomy.pop()!;
    if (last !== page) {
      this.#roomy[page.roomIndex] = last;
      last.roomIndex = page.roomIndex;
    }
    page.roomIndex = -1;
  }
}
