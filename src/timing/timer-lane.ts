import type { Clock } from '../clock.js';
import { Fifo } from '../structures/fifo.js';

/** Something that ends when its deadline passes. */
export interface DeadlineTarget {
  /** When it is due, in clock time; always set for a target in a lane. */
  readonly deadline: number | undefined;
  /** Called once, when the deadline has passed. */
  onDeadline(): void;
}

/**
 * Targets that all wait the same `ms`, on one timer: nothing is armed per
 * target. Because every target waits the same, insertion order is expiry
 * order: targets sit in a {@link Fifo}, and a sweep stops at the first one
 * still running — amortised O(1) per target, no closure over a timer
 * handle. The timer goes with the last target. A Node `Timeout` costs about
 * 200 bytes; a queue slot 8.
 *
 * Exchange deadlines use one lane per distinct timeout value
 * (`DeadlineQueue`), the Redis backplane one per fixed duration.
 */
export class TimerLane<T extends DeadlineTarget> {
  #targets = new Fifo<T>();
  #timer: unknown;
  #sweeping = false;

  /**
   * @param ms - How long every target waits.
   * @param clock - Where time is read and the timer scheduled.
   * @param onIdle - Called when the lane holds nothing any more (after a sweep or a cancel).
   */
  constructor(
    readonly ms: number,
    readonly clock: Clock,
    readonly onIdle?: () => void,
  ) {}

  /** Number of targets waiting. */
  get size(): number {
    return this.#targets.size;
  }

  /**
   * Adds `target`, whose deadline must be `ms` after now (or earlier, never
   * later than a target added after it); answers the handle for {@link TimerLane.cancel}.
   */
  add(target: T): number {
    const handle = this.#targets.push(target);
    if (this.#timer === undefined && !this.#sweeping) this.#arm(this.ms);
    return handle;
  }

  /** Cancels a target; answers whether it was still waiting. */
  cancel(handle: number): boolean {
    if (!this.#targets.remove(handle)) return false;
    if (this.#targets.size === 0) {
      this.#disarm();
      this.onIdle?.();
    }
    return true;
  }

  /** Ends every target now, in order. */
  fireAll(): void {
    const targets = this.#targets;
    this.clear();
    for (let target = targets.shift(); target !== undefined; target = targets.shift()) target.onDeadline();
  }

  /** Cancels everything, ending nothing. */
  clear(): void {
    this.#targets = new Fifo();
    this.#disarm();
  }

  #arm(ms: number): void {
    this.#timer = this.clock.setTimeout(this.#sweep, ms);
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    // Targets added by an `onDeadline` below come after the expired ones;
    // the flag keeps `add` from arming a second timer meanwhile.
    this.#sweeping = true;
    try {
      const now = this.clock.now();
      for (let target = this.#targets.peek(); target !== undefined; target = this.#targets.peek()) {
        const due = target.deadline! - now;
        if (due > 0) {
          this.#arm(due);
          return;
        }
        this.#targets.shift();
        target.onDeadline();
      }
    } finally {
      this.#sweeping = false;
    }
    this.onIdle?.();
  };
}

/**
 * For a lane of plain callbacks: calls `fire` once `lane`'s duration has
 * passed, unless cancelled with the handle it answers.
 */
export function after(lane: TimerLane<DeadlineTarget>, fire: () => void): number {
  return lane.add({ deadline: lane.clock.now() + lane.ms, onDeadline: fire });
}
