import { describe } from './_describe.js';
import {
  checkBoolean,
  checkClock,
  checkFunction,
  checkId,
  checkInteger,
  checkMethods,
  checkOptionsObject,
  checkTimeout,
  checkTtl,
  optionKeys,
} from './_validate.js';
import type { Backplane, TagStore } from './adapters.js';
import { MAX_TIMEOUT, type Clock } from './clock.js';
import { InvalidArgumentError } from './errors.js';
import { DEFAULT_MAX_TAGS } from './memory-tag-store.js';
import { GENERATED_ID_LENGTH } from './routing/secure-id.js';
import type { ExchangeResult, TraceCarrier } from './types.js';

/** Default {@link ControllerOptions.rollbackTag}. */
export const DEFAULT_ROLLBACK_TAG = 'rollback';
/** Default {@link ControllerOptions.committedTag}. */
export const DEFAULT_COMMITTED_TAG = 'committed';
/** Default {@link ControllerOptions.rollbackTtl}: three hours. */
export const DEFAULT_ROLLBACK_TTL = 3 * 60 * 60 * 1000;
/** Default {@link ControllerOptions.duplicateWindow}: one minute. */
export const DEFAULT_DUPLICATE_WINDOW = 60_000;
/** Default {@link ControllerOptions.maxDuplicates}. */
export const DEFAULT_MAX_DUPLICATES = 100_000;
/** Default {@link ControllerOptions.maxPendingRequests}. */
export const DEFAULT_MAX_PENDING_REQUESTS = 1_000_000;
/** Default {@link ControllerOptions.maxIdLength}. */
export const DEFAULT_MAX_ID_LENGTH = 256;
/** Default {@link ControllerOptions.timeout}: thirty seconds, so that no exchange waits forever by mistake. */
export const DEFAULT_TIMEOUT = 30_000;
/** Default {@link ControllerOptions.storeTimeout}. */
export const DEFAULT_STORE_TIMEOUT = 5_000;

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
   * Tag a worker claims on an ID before it commits the work the request
   * asked for ({@link claimCommitted}). The end of an exchange claims the
   * rollback tag against it: an unanswered ID the worker committed first is
   * not tagged for rollback but reported in {@link ExchangeResult.committed},
   * and a late reply to it is `committed`.
   * @defaultValue `"committed"`
   */
  committedTag?: string;
  /**
   * Whether `synchronize()` runs its operation inside `exchange.run()`, so
   * that `controller.currentExchange()` finds the exchange anywhere in the
   * operation's asynchronous call tree. Off by default: on Node.js 20,
   * AsyncLocalStorage turns on promise hooks for every promise of the
   * process from its first `run()` on (about 4 µs a request in an amqplib
   * RPC client, measured in #14). `exchange.run(fn)` always binds.
   * @defaultValue `false`
   */
  bindCurrentExchange?: boolean;
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
   * `Infinity`: none, an exchange then ends only by its signal or `close()`.
   * @defaultValue 30 000 (30 s)
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

/** Options of `controller.request()`: the exchange's, and the request's correlation ID. */
export interface RequestOptions extends CreateExchangeOptions {
  /** The ID the reply will carry; generated when absent. */
  correlationId?: string;
  /**
   * The request's trace context (see {@link RegisterRequestOptions.carrier}),
   * or a function that makes it: called once the exchange is traced and
   * active, so what it injects (`propagation.inject(context.active(), …)`)
   * names the exchange's span.
   */
  carrier?: TraceCarrier | (() => TraceCarrier);
}

/** The keys of {@link RequestOptions}. */
export const REQUEST_KEYS = optionKeys<RequestOptions>({ signal: true, timeout: true, id: true, correlationId: true, carrier: true });

/** Options of `exchange.registerRequest()`. */
export interface RegisterRequestOptions<Req = unknown> {
  /** The ID the reply will carry; generated when absent. */
  correlationId?: string;
  /** The outgoing message, kept for the result and `getRequest()`. */
  message?: Req;
  /**
   * The trace context the request goes out with, kept with it and handed
   * to the `rrxc:request:registered` and `rrxc:response:*` subscribers, so
   * that a tracer (`rrxc/otel`) links the processing of its reply —
   * wherever it arrives — to the request.
   */
  carrier?: TraceCarrier;
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

/** The keys of {@link TagOptions}. */
export const TAG_KEYS = optionKeys<TagOptions>({ ttl: true });

/** Options of `controller.claim()`. */
export interface ClaimOptions extends TagOptions {
  /** Tags that, when live on the ID, win over this claim. @defaultValue none */
  rivals?: readonly string[];
}

/** The keys of {@link ClaimOptions}. */
export const CLAIM_KEYS = optionKeys<ClaimOptions>({ ttl: true, rivals: true });

/** Controller options after validation, defaults applied. */
export interface ResolvedOptions<Req, Res> {
  readonly rollbackTag: string;
  readonly committedTag: string;
  readonly bindCurrentExchange: boolean;
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

const CONTROLLER_KEYS = optionKeys<ControllerOptions>({
  rollbackTag: true,
  committedTag: true,
  bindCurrentExchange: true,
  rollbackTtl: true,
  maxTags: true,
  duplicateWindow: true,
  maxDuplicates: true,
  maxPendingRequests: true,
  timeout: true,
  newId: true,
  maxIdLength: true,
  tagStore: true,
  storeTimeout: true,
  backplane: true,
  onRollback: true,
  clock: true,
});

/** Validates controller options once and applies defaults. */
export function resolveControllerOptions<Req, Res>(options: ControllerOptions<Req, Res> | undefined): ResolvedOptions<Req, Res> {
  const given = checkOptionsObject(options, 'Controller options', CONTROLLER_KEYS) as ControllerOptions<Req, Res>;
  const maxIdLength = orDefault(given.maxIdLength, DEFAULT_MAX_ID_LENGTH);
  checkInteger('maxIdLength', maxIdLength, 1);
  const rollbackTag = orDefault(given.rollbackTag, DEFAULT_ROLLBACK_TAG);
  checkId(rollbackTag, 'rollbackTag', maxIdLength);
  const committedTag = orDefault(given.committedTag, DEFAULT_COMMITTED_TAG);
  checkId(committedTag, 'committedTag', maxIdLength);
  if (committedTag === rollbackTag) throw new InvalidArgumentError(`committedTag and rollbackTag must differ, both are ${JSON.stringify(rollbackTag)}`);
  const resolved: ResolvedOptions<Req, Res> = {
    rollbackTag,
    committedTag,
    bindCurrentExchange: checkBoolean('bindCurrentExchange', given.bindCurrentExchange ?? false),
    rollbackTtl: checkTtl('rollbackTtl', orDefault(given.rollbackTtl, DEFAULT_ROLLBACK_TTL)),
    maxTags: checkInteger('maxTags', orDefault(given.maxTags, DEFAULT_MAX_TAGS), 1),
    duplicateWindow: checkTtl('duplicateWindow', orDefault(given.duplicateWindow, DEFAULT_DUPLICATE_WINDOW)),
    maxDuplicates: checkInteger('maxDuplicates', orDefault(given.maxDuplicates, DEFAULT_MAX_DUPLICATES), 1),
    maxPendingRequests: checkInteger('maxPendingRequests', orDefault(given.maxPendingRequests, DEFAULT_MAX_PENDING_REQUESTS), 1),
    timeout: checkTimeout('timeout', orDefault(given.timeout, DEFAULT_TIMEOUT)),
    newId: checkFunction('newId', given.newId),
    maxIdLength,
    tagStore: checkMethods('tagStore', given.tagStore, ['tag', 'untag', 'getTags', 'claim']),
    storeTimeout: checkTimeout('storeTimeout', orDefault(given.storeTimeout, DEFAULT_STORE_TIMEOUT)),
    backplane: checkBackplane(given.backplane, maxIdLength),
    onRollback: checkFunction('onRollback', given.onRollback),
    clock: checkClock(given.clock),
  };
  return resolved;
}

const EXCHANGE_KEYS = optionKeys<CreateExchangeOptions>({ signal: true, timeout: true, id: true });

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
 * `value`, or `fallback` when it is absent. Only `undefined` means absent:
 * `null` is a value, and the validators reject it with a clear message.
 */
function orDefault<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

/**
 * The `backplane` option: the methods it must have, and an `idPrefix` that
 * leaves room within `maxIdLength` for the 21 characters generated after it.
 */
function checkBackplane(value: Backplane | undefined, maxIdLength: number): Backplane | undefined {
  const backplane = checkMethods('backplane', value, ['start', 'forward', 'close']);
  const prefix: unknown = backplane?.idPrefix;
  if (prefix !== undefined && (typeof prefix !== 'string' || prefix.length > maxIdLength - GENERATED_ID_LENGTH)) {
    throw new InvalidArgumentError(
      `backplane.idPrefix must be a string of at most ${maxIdLength - GENERATED_ID_LENGTH} characters (maxIdLength less the ${GENERATED_ID_LENGTH} generated after it), got ${describe(prefix)}`,
    );
  }
  return backplane;
}
