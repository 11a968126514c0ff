import pTimeout from 'p-timeout';
import type { Clock } from '../clock.js';

/**
 * Bounds `promise` by `ms` on `clock` (p-timeout); `Infinity`: no bound.
 * The timeout rejects with p-timeout's `TimeoutError` carrying `message`.
 *
 * The one place rrxc hands a clock to p-timeout, which calls its timers
 * unbound (`setTimeout.call(undefined, …)`): they are wrapped here, so that
 * a clock written as a class, whose methods need `this`, works too. Only
 * for calls that may hang on something outside the process — a tag store —
 * never per exchange: p-timeout builds its `TimeoutError`, stack and all,
 * and arms a timer on every call. rrxc/redis, which bounds every Redis
 * command, shares one timer per duration instead (`Bounds`, in
 * src/redis/_connection.ts, says why).
 */
export function withTimeout<T>(promise: PromiseLike<T>, ms: number, message: string, clock: Clock): Promise<T> {
  if (ms === Infinity) return Promise.resolve(promise);
  return pTimeout(Promise.resolve(promise), {
    milliseconds: ms,
    message,
    customTimers: {
      setTimeout: ((callback: () => void, delay: number) => clock.setTimeout(callback, delay)) as unknown as typeof setTimeout,
      clearTimeout: ((handle: unknown) => clock.clearTimeout(handle)) as typeof clearTimeout,
    },
  });
}
