import type { Clock } from '../clock.js';
import { TimerLane, type DeadlineTarget } from './timer-lane.js';

/**
 * Exchange deadlines, with one armed timer per distinct timeout value
 * instead of one per exchange: exchanges that share a timeout expire in
 * the order they were created, so each timeout value gets a
 * {@link TimerLane}. A lane leaves with its last exchange.
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
        if (made.size === 0 && this.#lanes.get(timeout) === made) this.#lanes.delete(timeout);
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
}
