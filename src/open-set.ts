/**
 * The key under which a member keeps its slot: a symbol the package does not
 * export, so that no caller can reach — and corrupt — the slot of a public
 * object such as an `Exchange` (a wrong slot would leave an ended exchange
 * in the set, and `close()` ending "any" open one would never finish).
 */
export const OPEN_SLOT: unique symbol = Symbol('rrxc open slot');

/** A member of an {@link OpenSet}: it carries its own slot, so it leaves in O(1). */
export interface OpenSetMember {
  /** Index in the set's array; -1 when not in a set. */
  [OPEN_SLOT]: number;
}

/**
 * The open exchanges of a controller: an array whose members know their
 * index, removed by moving the last member into the gap. Add and delete
 * are a store each, where a `Set` hashes and, with one insert and one
 * delete per exchange, keeps rehashing its tombstones away. No order is
 * kept.
 */
export class OpenSet<T extends OpenSetMember> {
  #members: T[] = [];
  /** Most members since the array was last copied: V8 does not give back an array's slots as it empties. */
  #peak = 0;

  /** Number of members. */
  get size(): number {
    return this.#members.length;
  }

  add(member: T): void {
    member[OPEN_SLOT] = this.#members.push(member) - 1;
    if (this.#members.length > this.#peak) this.#peak = this.#members.length;
  }

  delete(member: T): void {
    const slot = member[OPEN_SLOT];
    if (slot < 0) return;
    member[OPEN_SLOT] = -1;
    const last = this.#members.pop()!;
    if (last !== member) {
      this.#members[slot] = last;
      last[OPEN_SLOT] = slot;
    }
    // Down to a quarter of the peak: copy into an array of the right size
    // (amortised O(1): the copy is paid for by the deletions before it).
    if (this.#peak >= 1024 && this.#members.length * 4 <= this.#peak) {
      this.#members = this.#members.slice();
      this.#peak = this.#members.length;
    }
  }

  /** Any member; `undefined` when empty. Take one at a time to end them all: ending one may end or add others. */
  any(): T | undefined {
    return this.#members[this.#members.length - 1];
  }
}
