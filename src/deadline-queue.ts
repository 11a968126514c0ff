import type { Clock } from './clock.js';
import { Fifo } from './fifo.js';

/** Something that ends when its deadline passes. */
export interface DeadlineTarget {
  /** When it is due, in clock time. */
  readonly deadline: number | undefined;
  /** Called once, when the deadline has passed. */
  onDeadline(): void;
}

interface Lane<T> {
  /** Queue order is deadline order: every member was added with the same timeout. */
  readonly members: Fifo<T>;
  timer: unknown;
}

/**
 * Exchange deadlines, with one armed timer per distinct timeout value
 * instead of one per exchange. Exchanges that share a timeout expire in the
 * order they were created, so each lane is a FIFO whose head alone needs a
 * timer. A Node `Timeout` costs about 200 bytes; a queue slot 8.
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

  /** Schedules `target`, whose deadline is now + `timeout`; returns the ticket for `delete`. */
  add(target: T, timeout: number): number {
    let lane = this.#lanes.get(timeout);
    if (lane === undefined) {
      lane = { members: new Fifo(), timer: undefined };
      this.#lanes.set(timeout, lane);
      this.#arm(timeout, lane, timeout);
    }
    return lane.members.push(target);
  }

  /** Unschedules the target `add` gave `ticket`; the lane's timer goes with its last member. */
  delete(timeout: number, ticket: number): void {
    const lane = this.#lanes.get(timeout);
    if (lane !== undefined && lane.members.remove(ticket) && lane.members.size === 0) this.#retire(timeout, lane);
  }

  #arm(timeout: number, lane: Lane<T>, ms: number): void {
    lane.timer = this.#clock.setTimeout(() => this.#fire(timeout, lane), ms);
  }

  #fire(timeout: number, lane: Lane<T>): void {
    lane.timer = undefined;
    for (let target = lane.members.peek(); target !== undefined; target = lane.members.peek()) {
      const due = target.deadline! - this.#clock.now();
      if (due > 0) {
        this.#arm(timeout, lane, due);
        return;
      }
      lane.members.shift();
      target.onDeadline();
    }
    this.#retire(timeout, lane);
  }

  #retire(timeout: number, lane: Lane<T>): void {
    if (lane.timer !== undefined) this.#clock.clearTimeout(lane.timer);
    lane.timer = undefined;
    if (this.#lanes.get(timeout) === lane) this.#lanes.delete(timeout);
  }
}
