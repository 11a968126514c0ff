import type { Clock } from '../../src/index.js';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
  /** Whether it would hold a process open (Node's `ref()` / `unref()`). */
  held: boolean;
}

/**
 * A clock that only moves when told to: `advance(ms)` fires, in order, every
 * timer due by then. `pending` counts the timers the library has scheduled
 * and not cleared, so tests can assert none is left behind.
 *
 * With `{ refable: true }` its handles have `ref()` and `unref()`, as
 * Node's do, and `held` counts the pending timers that are ref'd.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Set<Timer>();

  readonly #refable: boolean;
  #armed = 0;

  constructor(start = 1_700_000_000_000, { refable = false }: { refable?: boolean } = {}) {
    this.#now = start;
    this.#refable = refable;
  }

  get pending(): number {
    return this.#timers.size;
  }

  /** Calls of `setTimeout` so far. */
  get armed(): number {
    return this.#armed;
  }

  get held(): number {
    let held = 0;
    for (const timer of this.#timers) if (timer.held) held++;
    return held;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    this.#armed++;
    const timer: Timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, callback, held: true };
    this.#timers.add(timer);
    if (!this.#refable) return timer;
    return Object.assign(timer, {
      ref: () => void (timer.held = true),
      unref: () => void (timer.held = false),
    });
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as Timer);
  }

  /** Moves time forward by `ms`, firing due timers in deadline order. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.#timers) if (t.at <= until && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (next === undefined) break;
      this.#timers.delete(next);
      this.#now = Math.max(this.#now, next.at);
      next.callback();
    }
    this.#now = until;
  }
}
