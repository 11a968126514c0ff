import type { Clock } from './clock.js';

/** Something that ends when its deadline passes. */
export interface DeadlineTarget {
  /** When it is due, in clock time. */
  readonly deadline: number | undefined;
  /** Called once, when the deadline has passed. */
  onDeadline(): void;
}

interface Lane<T> {
  /** Insertion order is deadline order: every member was added with the same timeout. */
  readonly members: Set<T>;
  timer: unknown;
}

/**
 * Exchange deadlines, with one armed timer per distinct timeout value
 * instead of one per exchange. Exchanges that share a timeout expire in the
 * order they were created, so each lane is a FIFO `Set` (O(1) add and
 * delete) whose head alone needs a timer. A Node `Timeout` costs about
 * 200 bytes; a `Set` entry about 26.
 */
export class DeadlineQueue<T extends DeadlineTarget> {
  readonly #clock: Clock;
  readonly #lanes = new Map<number, Lane<T>>();

  /**
   * @param clock - Where time is read and the timers are scheduled.
   */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Number of timers armed. */
  get timers(): number {
    return this.#lanes.size;
  }

  /** Schedules `target`, whose deadline is now + `timeout`. */
  add(target: T, timeout: number): void {
    let lane = this.#lanes.get(timeout);
    if (lane === undefined) {
      lane = { members: new Set(), timer: undefined };
      this.#lanes.set(timeout, lane);
      this.#arm(timeout, lane, timeout);
    }
    lane.members.add(target);
  }

  /** Unschedules `target`; the lane's timer goes with its last member. */
  delete(target: T, timeout: number): void {
    const lane = this.#lanes.get(timeout);
    if (lane !== undefined && lane.members.delete(target) && lane.members.size === 0) this.#retire(timeout, lane);
  }

  #arm(timeout: number, lane: Lane<T>, ms: number): void {
    lane.timer = this.#clock.setTimeout(() => this.#fire(timeout, lane), ms);
  }

  #fire(timeout: number, lane: Lane<T>): void {
    lane.timer = undefined;
    for (const target of lane.members) {
      const due = target.deadline! - this.#clock.now();
      if (due > 0) {
        this.#arm(timeout, lane, due);
        return;
      }
      lane.members.delete(target);
      target.onDeadline();
    }
    if (lane.members.size === 0) this.#retire(timeout, lane);
  }

  #retire(timeout: number, lane: Lane<T>): void {
    if (lane.timer !== undefined) this.#clock.clearTimeout(lane.timer);
    lane.timer = undefined;
    if (this.#lanes.get(timeout) === lane) this.#lanes.delete(timeout);
  }
}
