import type { Clock } from '../clock.js';

/**
 * Timeouts that all last the same `ms`, on one timer: the per-reply paths
 * (acknowledgement waits, command deadlines) arm nothing per call. Because
 * every entry lasts the same, insertion order is expiry order, and a sweep
 * stops at the first entry still running: amortised O(1) per entry, no
 * closure over a timer handle and no `Error` built for a call that succeeds.
 */
export class TimerLane {
  readonly #entries = new Map<number, { readonly at: number; readonly fire: () => void }>();
  #next = 0;
  #timer: unknown;

  constructor(
    readonly ms: number,
    readonly clock: Clock,
  ) {}

  /** Calls `fire` after `ms` unless cancelled first; answers the handle for {@link TimerLane.cancel}. */
  add(fire: () => void): number {
    const handle = ++this.#next;
    this.#entries.set(handle, { at: this.clock.now() + this.ms, fire });
    if (this.#timer === undefined) this.#arm(this.ms);
    return handle;
  }

  /** Cancels an entry; answers whether it was still waiting. */
  cancel(handle: number): boolean {
    return this.#entries.delete(handle);
  }

  /** Fires every entry now, in order. */
  fireAll(): void {
    const entries = [...this.#entries.values()];
    this.clear();
    for (const entry of entries) entry.fire();
  }

  /** Cancels everything, firing nothing. */
  clear(): void {
    this.#entries.clear();
    if (this.#timer !== SWEEPING) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    this.#timer = this.clock.setTimeout(this.#sweep, Math.max(1, ms));
  }

  readonly #sweep = (): void => {
    // Entries added by a `fire` below come after the expired ones; the
    // placeholder keeps `add` from arming a second timer meanwhile.
    this.#timer = SWEEPING;
    const now = this.clock.now();
    for (const [handle, entry] of this.#entries) {
      if (entry.at > now) {
        this.#arm(entry.at - now);
        return;
      }
      this.#entries.delete(handle);
      entry.fire();
    }
    this.#timer = undefined;
  };
}

const SWEEPING = Symbol('sweeping');
