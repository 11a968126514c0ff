import { InvalidArgumentError } from '../errors.js';
import { describe } from '../_describe.js';
import { MAX_TIMEOUT } from '../clock.js';

/**
 * Checks a duration option that arms a timer (or, like `deadlineGrace`,
 * allows for one firing late): a positive number of milliseconds (or 0 when
 * `zero` allows it) of at most {@link MAX_TIMEOUT}, since Node fires a longer
 * timer after 1 ms.
 */
export function checkDuration(name: string, value: unknown, zero = false): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (!zero && value === 0) || value > MAX_TIMEOUT) {
    throw new InvalidArgumentError(`${name} must be a ${zero ? 'non-negative' : 'positive'} number of milliseconds, at most ${MAX_TIMEOUT}, got ${describe(value)}`);
  }
  return Math.ceil(value);
}

/**
 * Checks `maxTtl`, a TTL written to Redis. It arms no timer, so it may
 * exceed {@link MAX_TIMEOUT} (its 30-day default does); its bound is what
 * Redis takes instead. The scripts pass TTLs to `PEXPIRE` as Lua numbers,
 * which Redis formats with 17 significant digits: from 10¹⁷ on it gets
 * `1e+17` and refuses every write. Up to `Number.MAX_SAFE_INTEGER`, Lua
 * holds the integer exactly and Redis gets it as one.
 */
export function checkRedisTtl(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0) || value > Number.MAX_SAFE_INTEGER) {
    throw new InvalidArgumentError(`${name} must be a positive number of milliseconds, at most ${Number.MAX_SAFE_INTEGER}, got ${describe(value)}`);
  }
  return Math.ceil(value);
}

/** The TTL written to Redis: `0` (no expiry) and anything longer become `maxTtl`. */
export function clampTtl(ttl: number, maxTtl: number): number {
  return ttl === 0 || ttl > maxTtl ? maxTtl : Math.max(1, Math.ceil(ttl));
}
