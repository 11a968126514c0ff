import type { Clock } from '../clock.js';
import { ExpiryQueue } from '../structures/expiry-queue.js';

/** Something that ends when its deadline passes. */
export interface DeadlineTarget {
  /** When it is due, in clock time; read once, when the target joins a lane. */
  readonly deadline: number | undefined;
  /** Called once, when the deadline has passed. */
  onDeadline(): void;
}

/**
 * Targets that all wait the same `ms`, on one timer: nothing is armed per
 * target. Because every target waits the same, insertion order is expiry
 * order: targets sit in an {@link ExpiryQueue}, and a sweep stops at the
 * first one still running — amortised O(1) per target, no closure over a
 * timer handle. A Node `Timeout` costs about 200 bytes; a queue slot 16.
 *
 * The timer outlives the last target: it is unref'd, so that it holds no
 * process open, and goes when it fires with nothing to sweep. A lane that
 * empties and fills again on every request (one caller in flight) would
 * otherwise arm and clear a timer each time; the clock's handles must have
 * `ref()` and `unref()` for that (Node's and the fake timers' do), or the
 * timer goes with the last target.
 *
 * Exchange deadlines use one lane per distinct timeout value
 * (`DeadlineQueue`), the Redis backplane one for its acknowledgement waits.
 */
export class TimerLane<T extends DeadlineTarget> {
  readonly #targets = new ExpiryQueue<T>();
  #timer: unknown;
  #sweeping = false;

  /**
   * @param ms - How long every target waits.
   * @param clock - Where time is read and the timer scheduled.
   * @param onIdle - Called when the lane holds nothing any more (after a sweep, a cancel or a take); {@link TimerLane.clear} stops its timer.
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
   *
   * @param key - A non-negative integer to find the target by with
   *   {@link TimerLane.take}; a target already waiting under it leaves the lane.
   */
  add(target: T, key?: number): number {
    const handle = this.#targets.add(target, target.deadline!, key);
    if (this.#timer === undefined) {
      if (!this.#sweeping) this.#arm(this.ms);
    } else if (this.#targets.size === 1) {
      // The timer kept running while the lane was empty: it holds the process open again.
      (this.#timer as Refable).ref();
    }
    return handle;
  }

  /** Cancels a target; answers whether it was still waiting. */
  cancel(handle: number): boolean {
    return this.#left(this.#targets.delete(handle)) !== undefined;
  }

  /** Cancels the target added under `key`; answers it, `undefined` when none waits. */
  take(key: number): T | undefined {
    return this.#left(this.#targets.take(key));
  }

  /** Cancels everything, ending nothing; answers the targets that were waiting, oldest first. */
  clear(): T[] {
    this.#disarm();
    return this.#targets.clear();
  }

  #left(target: T | undefined): T | undefined {
    if (target !== undefined && this.#targets.size === 0) {
      if (refable(this.#timer)) this.#timer.unref();
      else this.#disarm();
      this.onIdle?.();
    }
    return target;
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
      for (let target = this.#targets.shift(now); target !== undefined; target = this.#targets.shift(now)) target.onDeadline();
      const next = this.#targets.nextAt;
      if (next !== undefined) {
        this.#arm(next - now);
        return;
      }
    } finally {
      this.#sweeping = false;
    }
    this.onIdle?.();
  };
}

/** A timer handle that can stop and start holding the process open: Node's `Timeout`, the fake timers'. */
interface Refable {
  ref(): unknown;
  unref(): unknown;
}

function refable(handle: unknown): handle is Refable {
  return typeof (handle as Partial<Refable> | undefined)?.unref === 'function' && typeof (handle as Partial<Refable>).ref === 'function';
}
