import type { Clock } from '../clock.js';
import { Fifo } from '../fifo.js';

interface Entry {
  readonly at: number;
  readonly fire: () => void;
}

/**
 * Timeouts that all last the same `ms`, on one timer: the per-reply paths
 * (acknowledgement waits, command deadlines) arm nothing per call. Because
 * every entry lasts the same, insertion order is expiry order: entries sit
 * in the core's `Fifo`, and a sweep stops at the first one still running —
 * amortised O(1) per entry, no closure over a timer handle and no `Error`
 * built for a call that succeeds. The timer goes with the last entry.
 */
export class TimerLane {
  #entries = new Fifo<Entry>();
  #timer: unknown;
  #sweeping = false;

  constructor(
    readonly ms: number,
    readonly clock: Clock,
  ) {}

  /** Calls `fire` after `ms` unless cancelled first; answers the handle for {@link TimerLane.cancel}. */
  add(fire: () => void): number {
    const handle = this.#entries.push({ at: this.clock.now() + this.ms, fire });
    if (this.#timer === undefined && !this.#sweeping) this.#arm(this.ms);
    return handle;
  }

  /** Cancels an entry; answers whether it was still waiting. */
  cancel(handle: number): boolean {
    if (!this.#entries.remove(handle)) return false;
    if (this.#entries.size === 0) this.#disarm();
    return true;
  }

  /** Fires every entry now, in order. */
  fireAll(): void {
    const entries = this.#entries;
    this.clear();
    for (let entry = entries.shift(); entry !== undefined; entry = entries.shift()) entry.fire();
  }

  /** Cancels everything, firing nothing. */
  clear(): void {
    this.#entries = new Fifo();
    this.#disarm();
  }

  #arm(ms: number): void {
    this.#timer = this.clock.setTimeout(this.#sweep, Math.max(1, ms));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    // Entries added by a `fire` below come after the expired ones; the flag
    // keeps `add` from arming a second timer meanwhile.
    this.#sweeping = true;
    try {
      const now = this.clock.now();
      for (let entry = this.#entries.peek(); entry !== undefined; entry = this.#entries.peek()) {
        if (entry.at > now) {
          this.#arm(entry.at - now);
          return;
        }
        this.#entries.shift();
        entry.fire();
      }
    } finally {
      this.#sweeping = false;
    }
  };
}
