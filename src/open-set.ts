/** A member of an {@link OpenSet}: it carries its own slot, so it leaves in O(1). */
export interface OpenSetMember {
  /** Index in the set's array; -1 when not in a set. */
  openSlot: number;
}

/**
 * The open exchanges of a controller: an array whose members know their
 * index, removed by moving the last member into the gap. Add and delete
 * are a store each, where a `Set` hashes and, with one insert and one
 * delete per exchange, keeps rehashing its tombstones away. No order is
 * kept.
 */
export class OpenSet<T extends OpenSetMember> {
  readonly #members: T[] = [];

  /** Number of members. */
  get size(): number {
    return this.#members.length;
  }

  add(member: T): void {
    member.openSlot = this.#members.push(member) - 1;
  }

  delete(member: T): void {
    const slot = member.openSlot;
    if (slot < 0) return;
    member.openSlot = -1;
    const last = this.#members.pop()!;
    if (last !== member) {
      this.#members[slot] = last;
      last.openSlot = slot;
    }
  }

  /** Any member; `undefined` when empty. Take one at a time to end them all: ending one may end or add others. */
  any(): T | undefined {
    return this.#members[this.#members.length - 1];
  }
}
