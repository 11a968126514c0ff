import type { Backplane } from './backplane.js';
import { systemClock, type Clock } from './clock.js';
import { InvalidArgumentError } from './errors.js';
import type { TagStore } from './tag-store.js';
import type { ExchangeResult } from './types.js';

/** Default {@link ControllerOptions.rollbackTag}. */
export const DEFAULT_ROLLBACK_TAG = 'rollback';
/** Default {@link ControllerOptions.rollbackTtl}: three hours. */
export const DEFAULT_ROLLBACK_TTL = 3 * 60 * 60 * 1000;
/** Default {@link ControllerOptions.maxTags}. */
export const DEFAULT_MAX_TAGS = 100_000;
/** Default {@link ControllerOptions.duplicateWindow}: one minute. */
export const DEFAULT_DUPLICATE_WINDOW = 60_000;
/** Default {@link ControllerOptions.maxDuplicates}. */
export const DEFAULT_MAX_DUPLICATES = 100_000;
/** Default {@link ControllerOptions.maxPendingRequests}. */
export const DEFAULT_MAX_PENDING_REQUESTS = 1_000_000;
/** Default {@link ControllerOptions.maxIdLength}. */
export const DEFAULT_MAX_ID_LENGTH = 256;
/** Default {@link ControllerOptions.storeTimeout}. */
export const DEFAULT_STORE_TIMEOUT = 5_000;
/** The longest timeout Node's timers can hold (2³¹−1 ms, about 24.8 days); longer ones would fire at once. */
export const MAX_TIMEOUT = 2 ** 31 - 1;

/**
 * Options of `new Controller(options)`. All optional; each is validated once,
 * in the constructor, and an unknown key is an error (it is usually a typo).
 */
export interface ControllerOptions<Req = unknown, Res = unknown> {
  /**
   * Tag put on the IDs an exchange leaves unanswered when it ends.
   * @defaultValue `"rollback"`
   */
  rollbackTag?: string;
  /**
   * Milliseconds until a rollback tag expires; `0` keeps it until `maxTags`
   * evicts it.
   * @defaultValue 10 800 000 (3 h)
   */
  rollbackTtl?: number;
  /**
   * Bound on the IDs the default in-memory tag store holds; the least recently
   * used is evicted first, and evicting one with live tags is published on
   * `rrxc:tag:evicted`. Ignored when `tagStore` is given.
   * @defaultValue 100 000
   */
  maxTags?: number;
  /**
   * Milliseconds during which a reply for an already answered ID of an ended
   * exchange is reported `"duplicate"` rather than `"unmatched"`; `0` turns
   * the window off.
   * @defaultValue 60 000
   */
  duplicateWindow?: number;
  /**
   * Bound on the answered IDs remembered for `duplicateWindow` (at most this
   * many, at least the newest half, the oldest dropped first), kept apart
   * from the tag store so that a flood of answered IDs never evicts a
   * rollback tag.
   * @defaultValue 100 000
   */
  maxDuplicates?: number;
  /**
   * Bound on requests registered in open exchanges, over all exchanges; one
   * more throws `CapacityError`.
   * @defaultValue 1 000 000
   */
  maxPendingRequests?: number;
  /**
   * Default exchange timeout in milliseconds (at most {@link MAX_TIMEOUT});
   * `Infinity` or absent: none.
   */
  timeout?: number;
  /**
   * Correlation-ID generator. It is called again if it returns an ID that is
   * already pending. Its IDs are routed through a `Map`; the default's name
   * the slot of their request, which routing reads instead of hashing.
   * @defaultValue 21 characters of nanoid's URL-safe alphabet: 17 random (102 bits), 4 locating the request
   */
  newId?: () => string;
  /**
   * Longest correlation or exchange ID accepted.
   * @defaultValue 256
   */
  maxIdLength?: number;
  /**
   * Where rollback tags live.
   * @defaultValue an in-memory {@link MemoryTagStore} bounded by `maxTags`
   */
  tagStore?: TagStore;
  /**
   * Milliseconds a call to an asynchronous `tagStore` may take before it is
   * treated as failed (`TagStoreError`). Synchronous stores are not timed.
   * @defaultValue 5 000
   */
  storeTimeout?: number;
  /** Forwards replies between instances; absent: single process. */
  backplane?: Backplane;
  /**
   * Called once per ended exchange that left IDs unanswered, after they were
   * tagged. Errors it throws or rejects with are published on
   * `rrxc:hook:error`, never rethrown.
   */
  onRollback?: (correlationIds: readonly string[], result: ExchangeResult<Req, Res>) => void | Promise<void>;
  /**
   * Source of time and timers, for tests.
   * @defaultValue {@link systemClock}
   */
  clock?: Clock;
}

/** Options of `controller.createExchange()`. */
export interface CreateExchangeOptions {
  /** Ends the exchange with status `aborted` (or `timed-out` for a `TimeoutError` reason) when it aborts. */
  signal?: AbortSignal;
  /** Milliseconds until the exchange ends with status `timed-out`; overrides the controller's `timeout`. */
  timeout?: number;
  /** The exchange's ID; generated when absent. */
  id?: string;
}

/** Options of `controller.synchronize()`. */
export type SynchronizeOptions = CreateExchangeOptions;

/** Options of `exchange.registerRequest()`. */
export interface RegisterRequestOptions<Req = unknown> {
  /** The ID the reply will carry; generated when absent. */
  correlationId?: string;
  /** The outgoing message, kept for the result and `getRequest()`. */
  message?: Req;
}

/** Options of `controller.registerResponse()`. */
export interface RegisterResponseOptions<Res = unknown> {
  /** The ID the reply carries. */
  correlationId: string;
  /** The reply. */
  message: Res;
  /**
   * Replace the response of an already answered request of an open exchange
   * (outcome `"overwritten"`). The request's `response` promise keeps the
   * first reply — a promise settles once; `getResponse()`, the result and
   * later `responses()` snapshots show the new one.
   * @defaultValue false
   */
  overwrite?: boolean;
}

/** Options of `controller.tag()`. */
export interface TagOptions {
  /** Milliseconds until the tag expires; `0`: never. Defaults to `rollbackTtl`. */
  ttl?: number;
}

/** Controller options after validation, defaults applied. */
export interface ResolvedOptions<Req, Res> {
  readonly rollbackTag: string;
  readonly rollbackTtl: number;
  readonly maxTags: number;
  readonly duplicateWindow: number;
  readonly maxDuplicates: number;
  readonly maxPendingRequests: number;
  readonly timeout: number;
  readonly newId: (() => string) | undefined;
  readonly maxIdLength: number;
  readonly tagStore: TagStore | undefined;
  readonly storeTimeout: number;
  readonly backplane: Backplane | undefined;
  readonly onRollback: ControllerOptions<Req, Res>['onRollback'];
  readonly clock: Clock;
}

const CONTROLLER_KEYS = new Set([
  'rollbackTag',
  'rollbackTtl',
  'maxTags',
  'duplicateWindow',
  'maxDuplicates',
  'maxPendingRequests',
  'timeout',
  'newId',
  'maxIdLength',
  'tagStore',
  'storeTimeout',
  'backplane',
  'onRollback',
  'clock',
]);

/** Validates controller options once and applies defaults. */
export function resolveControllerOptions<Req, Res>(options: ControllerOptions<Req, Res> | undefined): ResolvedOptions<Req, Res> {
  const given = checkOptionsObject(options, 'Controller options', CONTROLLER_KEYS) as ControllerOptions<Req, Res>;
  const maxIdLength = orDefault(given.maxIdLength, DEFAULT_MAX_ID_LENGTH);
  checkInteger('maxIdLength', maxIdLength, 1);
  const rollbackTag = orDefault(given.rollbackTag, DEFAULT_ROLLBACK_TAG);
  checkId(rollbackTag, 'rollbackTag', maxIdLength);
  const resolved: ResolvedOptions<Req, Res> = {
    rollbackTag,
    rollbackTtl: checkTtl('rollbackTtl', orDefault(given.rollbackTtl, DEFAULT_ROLLBACK_TTL)),
    maxTags: checkInteger('maxTags', orDefault(given.maxTags, DEFAULT_MAX_TAGS), 1),
    duplicateWindow: checkTtl('duplicateWindow', orDefault(given.duplicateWindow, DEFAULT_DUPLICATE_WINDOW)),
    maxDuplicates: checkInteger('maxDuplicates', orDefault(given.maxDuplicates, DEFAULT_MAX_DUPLICATES), 1),
    maxPendingRequests: checkInteger('maxPendingRequests', orDefault(given.maxPendingRequests, DEFAULT_MAX_PENDING_REQUESTS), 1),
    timeout: checkTimeout('timeout', orDefault(given.timeout, Infinity)),
    newId: checkFunction('newId', given.newId),
    maxIdLength,
    tagStore: checkMethods('tagStore', given.tagStore, ['tag', 'untag', 'getTags']),
    storeTimeout: checkTimeout('storeTimeout', orDefault(given.storeTimeout, DEFAULT_STORE_TIMEOUT)),
    backplane: checkMethods('backplane', given.backplane, ['start', 'forward', 'close']),
    onRollback: checkFunction('onRollback', given.onRollback),
    clock: checkClock(given.clock),
  };
  return resolved;
}

const EXCHANGE_KEYS = new Set(['signal', 'timeout', 'id']);

/** Validates the options of `createExchange()` / `synchronize()`. */
export function checkExchangeOptions(options: CreateExchangeOptions | undefined, maxIdLength: number): CreateExchangeOptions {
  const given = checkOptionsObject(options, 'exchange options', EXCHANGE_KEYS) as CreateExchangeOptions;
  if (given.signal !== undefined && !(given.signal instanceof AbortSignal)) {
    throw new InvalidArgumentError(`signal must be an AbortSignal, got ${describe(given.signal)}`);
  }
  if (given.timeout !== undefined) checkTimeout('timeout', given.timeout);
  if (given.id !== undefined) checkId(given.id, 'id', maxIdLength);
  return given;
}

/**
 * Throws unless `value` is a non-empty string of at most `maxLength`
 * characters. Any such string is a valid key, `"__proto__"` included: IDs
 * are only ever `Map` keys, compared, or read character by character.
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
  if (typeof value === 'string' && value.length > 0 && value.length <= maxLength) return undefined;
  return new InvalidArgumentError(`${what} must be a non-empty string of at most ${maxLength} characters, got ${describe(value)}`);
}

/** Throws unless `value` is a TTL: a finite number of milliseconds ≥ 0. */
export function checkTtl(what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`${what} must be a finite number of milliseconds ≥ 0 (0: no expiry), got ${describe(value)}`);
  }
  return value;
}

/** Throws unless `value` is a timeout Node can schedule, or `Infinity` for none. */
function checkTimeout(what: string, value: unknown): number {
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

/**
 * Describes a value for an error message: ``\`42\` (number)``. Never throws,
 * not even for objects without a prototype.
 */
export function describe(value: unknown): string {
  if (typeof value === 'string') {
    return `${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)} (string of ${value.length})`;
  }
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return `\`${String(value)}\` (${value === null ? 'null' : typeof value})`;
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name;
  return `an object (${name ?? 'no prototype'})`;
}

/**
 * `value`, or `fallback` when it is absent. Only `undefined` means absent:
 * `null` is a value, and the validators reject it with a clear message.
 */
function orDefault<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

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
