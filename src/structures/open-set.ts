/**
 * The key under which a member keeps its index: a symbol the package does not
 * export, so that no caller can reach — and corrupt — the index of a public
 * object such as an `Exchange` (a wrong index would leave an ended exchange
 * in the set, and `close()` would try to end it again and again).
 */
export const OPEN_SET_INDEX: unique symbol = Symbol('rrxc open set index');

/** A member of an {@link OpenSet}: it carries its own index, so it leaves in O(1). */
export interface OpenSetMember {
  /** Index in the set's array; -1 when not in a set. */
  [OPEN_SET_INDEX]: number;
}

/**
 * The open exchanges of a controller: an array whose members know their
 * index. Leaving empties the member's slot for the next one to take, and
 * touches no other member — moving the last member into the gap would
 * write to an exchange that is likely out of the cache; a `Set` hashes
 * and, with one insert and one delete per exchange, keeps rehashing its
 * tombstones away. No order is kept.
 */
export class OpenSet<T extends OpenSetMember> {
  #members: (T | undefined)[] = [];
  /** Empty slots below `#members.length`. */
  #free: number[] = [];
  #size = 0;

  /** Number of members. */
  get size(): number {
    return this.#size;
  }

  add(member: T): void {
    const slot = this.#free.pop() ?? this.#members.length;
    this.#members[slot] = member;
    member[OPEN_SET_INDEX] = slot;
    this.#size++;
  }

  delete(member: T): void {
    const slot = member[OPEN_SET_INDEX];
    if (slot < 0) return;
    member[OPEN_SET_INDEX] = -1;
    this.#members[slot] = undefined;
    this.#size--;
    // Down to a quarter of the slots: move the members into an array of the
    // right size (amortised O(1): the deletions since the last move pay for it).
    if (this.#members.length >= 1024 && this.#size * 4 <= this.#members.length) this.#compact();
    else this.#free.push(slot);
  }

  /** The members now, as an array of their own: ending one may end or add others. */
  members(): T[] {
    return this.#members.filter((member) => member !== undefined);
  }

  #compact(): void {
    const members = this.members();
    members.forEach((member, slot) => (member[OPEN_SET_INDEX] = slot));
    this.#members = members;
    this.#free = [];
  }
}
