// The validators every entry point shares: each throws an
// InvalidArgumentError that names what was wrong and what was given.
import { describe } from './_describe.js';
import { MAX_TIMEOUT, systemClock, type Clock } from './clock.js';
import { InvalidArgumentError } from './errors.js';

/**
 * Throws unless `value` is a non-empty, well-formed string of at most
 * `maxLength` characters. Any such string is a valid key, `"__proto__"`
 * included: IDs are only ever `Map` keys, compared, or read character by
 * character.
 */
export function checkId(value: unknown, what: string, maxLength: number): asserts value is string {
  const invalid = idError(value, what, maxLength);
  if (invalid !== undefined) throw invalid;
}

/**
 * What {@link checkId} throws, returned instead: for callers that must
 * reject rather than throw.
 */
export function idError(value: unknown, what: string, maxLength: number): InvalidArgumentError | undefined {
  // Well-formed: a lone surrogate has no UTF-8 form, so a shared store
  // (Redis) would turn two such IDs into the same key.
  if (typeof value === 'string' && value.length > 0 && value.length <= maxLength && value.isWellFormed()) return undefined;
  return new InvalidArgumentError(`${what} must be a non-empty string of at most ${maxLength} characters, well-formed (no lone surrogate), got ${describe(value)}`);
}

/** Throws unless `value` is a boolean. */
export function checkBoolean(what: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${what} must be a boolean, got ${describe(value)}`);
  return value;
}

/** Throws unless `value` is a TTL: a finite number of milliseconds ≥ 0. */
export function checkTtl(what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`${what} must be a finite number of milliseconds ≥ 0 (0: no expiry), got ${describe(value)}`);
  }
  return value;
}

/** Throws unless `value` is a timeout Node can schedule, or `Infinity` for none. */
export function checkTimeout(what: string, value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (value > MAX_TIMEOUT && value !== Infinity)) {
    throw new InvalidArgumentError(`${what} must be a number of milliseconds from 0 to ${MAX_TIMEOUT}, or Infinity for none, got ${describe(value)}`);
  }
  return value;
}

/** Throws unless `value` is an options object (or undefined) with only `known` keys; answers it, or `{}`. */
export function checkOptionsObject<T extends object>(value: T | undefined, what: string, known: ReadonlySet<string>): Partial<T> {
  if (value === undefined) return NO_OPTIONS as Partial<T>;
  if (typeof value !== 'object' || value === null) {
    throw new InvalidArgumentError(`${what} must be an object, got ${describe(value)}`);
  }
  // for…in rather than Object.keys(): no array allocated on the createExchange path.
  for (const key in value) {
    if (!known.has(key)) {
      throw new InvalidArgumentError(`unknown option \`${key}\` in ${what}; known: ${[...known].join(', ')}`);
    }
  }
  return value;
}

/** What omitted options read as: one shared object, not one allocated per `createExchange()`. */
const NO_OPTIONS: Readonly<Record<string, never>> = Object.freeze({});


/** Throws unless `value` is a safe integer ≥ `min`. */
export function checkInteger(what: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`${what} must be an integer ≥ ${min}, got ${describe(value)}`);
  }
  return value;
}

/** Throws unless `value` is a function or undefined. */
export function checkFunction<F>(what: string, value: F | undefined): F | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new InvalidArgumentError(`${what} must be a function, got ${describe(value)}`);
  }
  return value;
}

/** The `clock` option: a {@link Clock}, or the system clock when none is given. */
export function checkClock(value: Clock | undefined): Clock {
  return checkMethods('clock', value, ['now', 'setTimeout', 'clearTimeout']) ?? systemClock;
}

/** `value` unless it lacks one of `methods`; `undefined` stays `undefined` (the caller's default applies). */
export function checkMethods<T>(what: string, value: T | undefined, methods: readonly string[]): T | undefined {
  if (value === undefined) return undefined;
  const missing = methods.filter((m) => typeof (value as Record<string, unknown> | null)?.[m] !== 'function');
  if (missing.length > 0) {
    throw new InvalidArgumentError(`${what} must have the methods ${methods.join(', ')}; missing: ${missing.join(', ')}`);
  }
  return value;
}

/**
 * The keys of an options type, as the set `checkOptionsObject` checks
 * against. Written as an object whose keys must be exactly those of `T`, so
 * the compiler rejects a list that misses an option or names one that is
 * gone.
 */
export function optionKeys<T extends object>(keys: { readonly [K in keyof Required<T>]: true }): ReadonlySet<string> {
  return new Set(Object.keys(keys));
}
