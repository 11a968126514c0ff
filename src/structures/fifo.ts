/**
 * A first-in first-out queue on an array, with O(1) removal from anywhere by
 * the sequence number `push` returned. Removed slots become holes that the
 * head moves past once; the array is compacted when the head has passed
 * half of it, so every operation is amortised O(1), and the array holds no
 * more than the span from the oldest item held to the newest.
 *
 * A `Set` or `Map` used as a queue is not: V8 leaves deleted entries as
 * tombstones until the next rehash, and every iteration from the front walks
 * all of them again.
 */
export class Fifo<T> {
  #slots: (T | undefined)[] = [];
  /** Index in `#slots` of the first slot not yet shifted. */
  #head = 0;
  /** Sequence number of `#slots[0]`. */
  #base = 0;
  #size = 0;

  /** Number of items held. */
  get size(): number {
    return this.#size;
  }

  /** Appends `item`; returns its sequence number, for `remove`. */
  push(item: T): number {
    this.#slots.push(item);
    this.#size++;
    return this.#base + this.#slots.length - 1;
  }

  /** Removes the item pushed as `seq`; answers whether it was still held. */
  remove(seq: number): boolean {
    const index = seq - this.#base;
    if (index < this.#head || index >= this.#slots.length || this.#slots[index] === undefined) return false;
    this.#slots[index] = undefined;
    this.#size--;
    // Items mostly leave in the order they came (exchanges sharing a
    // timeout end roughly in creation order): move past the holes now, so
    // the array is compacted as it goes rather than only when peeked at.
    if (index === this.#head) this.#skipHoles();
    return true;
  }

  /** The oldest item held. */
  peek(): T | undefined {
    this.#skipHoles();
    return this.#slots[this.#head];
  }

  /** Removes and returns the oldest item held. */
  shift(): T | undefined {
    this.#skipHoles();
    const item = this.#slots[this.#head];
    if (item === undefined) return undefined;
    this.#slots[this.#head++] = undefined;
    this.#size--;
    this.#compact();
    return item;
  }

  #skipHoles(): void {
    while (this.#head < this.#slots.length && this.#slots[this.#head] === undefined) this.#head++;
    this.#compact();
  }

  #compact(): void {
    if (this.#head >= 1024 && this.#head * 2 >= this.#slots.length) {
      this.#slots = this.#slots.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
  }
}
