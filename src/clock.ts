/**
 * The one place rrxc reads the time and schedules its timers: exchange
 * deadlines, tag and duplicate-window expiry, the store timeout. Inject one
 * to drive time in tests; `AbortSignal.timeout()` and fake timers do not mix,
 * so rrxc never uses the former for its own deadlines.
 */
export interface Clock {
  /** Milliseconds since the epoch (or any fixed origin, used consistently). */
  now(): number;
  /**
   * Calls `callback` once after `ms` milliseconds; returns a handle for
   * `clearTimeout`. A handle with `ref()` and `unref()`, as Node's
   * `Timeout`, lets rrxc keep a timer, unref'd, between exchanges that
   * share a timeout instead of arming one per exchange.
   */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer made by this clock's `setTimeout`. */
  clearTimeout(handle: unknown): void;
}

/**
 * The real clock: `Date.now()` and the global timers, looked up at call time
 * so that test fake timers installed later still take effect.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** The longest timeout Node's timers can hold (2³¹−1 ms, about 24.8 days); longer ones would fire at once. */
export const MAX_TIMEOUT = 2 ** 31 - 1;
