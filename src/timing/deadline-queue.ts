import type { Clock } from '../clock.js';
import { TimerLane, type DeadlineTarget } from './timer-lane.js';

/**
 * Exchange deadlines, with one armed timer per distinct timeout value
 * instead of one per exchange: exchanges that share a timeout expire in
 * the order they were created, so each timeout value gets a
 * {@link TimerLane}. Up to {@link LANES_KEPT} lanes stay when their last
 * exchange ends, so that the next exchange with that timeout finds its lane
 * (and timer) in place; beyond that a lane leaves with its last exchange,
 * so that timeouts computed per request (a remaining budget) hold no memory
 * once their exchanges end.
 */
export class DeadlineQueue<T extends DeadlineTarget> {
  readonly #clock: Clock;
  readonly #lanes = new Map<number, TimerLane<T>>();

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
      const made = new TimerLane<T>(timeout, this.#clock, () => {
        if (this.#lanes.size > LANES_KEPT && this.#lanes.get(timeout) === made) {
          made.clear();
          this.#lanes.delete(timeout);
        }
      });
      this.#lanes.set(timeout, made);
      lane = made;
    }
    return lane.add(target);
  }

  /** Unschedules the target `add` gave `ticket`. */
  delete(timeout: number, ticket: number): void {
    this.#lanes.get(timeout)?.cancel(ticket);
  }

  /** Drops every lane and stops its timer, ending nothing: for a controller that closed. */
  clear(): void {
    for (const lane of this.#lanes.values()) lane.clear();
    this.#lanes.clear();
  }
}

/** How many lanes stay once empty: a controller's few timeout values, not one per request. */
const LANES_KEPT = 8;
