import { channel, tracingChannel, type Channel } from 'node:diagnostics_channel';
import type { Controller } from './controller.js';
import type { Exchange } from './exchange.js';
import type { ExchangeResult, ResponseOutcome, TraceCarrier } from './types.js';

/**
 * Names of the `node:diagnostics_channel` channels rrxc publishes on.
 * Subscribe with `diagnostics_channel.subscribe(name, listener)`; nothing is
 * built or published while a channel has no subscriber.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { createHistogram } from 'node:perf_hooks';
 * import { CHANNELS, type ExchangeEndedMessage } from 'rrxc';
 *
 * const completed = createHistogram();
 * subscribe(CHANNELS.exchangeEnded, (message) => {
 *   const { result } = message as ExchangeEndedMessage;
 *   if (result.status === 'completed') completed.record(Math.max(1, Math.round(result.durationMs)));
 * });
 * ```
 */
export const CHANNELS = {
  /** An exchange was created. Message: {@link ExchangeMessage}. */
  exchangeCreated: 'rrxc:exchange:created',
  /** An exchange ended. Message: {@link ExchangeEndedMessage}. */
  exchangeEnded: 'rrxc:exchange:ended',
  /** A request was registered on an exchange. Message: {@link RequestMessage}. */
  requestRegistered: 'rrxc:request:registered',
  /** A reply was handed to its exchange. Message: {@link ResponseMessage}. */
  responseDelivered: 'rrxc:response:delivered',
  /** A reply came for an ID already answered. Message: {@link ResponseMessage}. */
  responseDuplicate: 'rrxc:response:duplicate',
  /** A reply replaced an earlier one (`overwrite: true`). Message: {@link ResponseMessage}. */
  responseOverwritten: 'rrxc:response:overwritten',
  /** A reply came for an ID tagged for rollback. Message: {@link ResponseMessage}. */
  responseRolledBack: 'rrxc:response:rolled-back',
  /** A reply came for an ID a worker claimed committed after its exchange had ended unanswered. Message: {@link ResponseMessage}. */
  responseCommitted: 'rrxc:response:committed',
  /** A reply came for an ID nobody owns. Message: {@link ResponseMessage}. */
  responseUnmatched: 'rrxc:response:unmatched',
  /** Unanswered IDs of an ended exchange were tagged for rollback. Message: {@link RollbackMessage}. */
  rollbackTagged: 'rrxc:rollback:tagged',
  /** The in-memory tag store evicted an ID that still had live tags (`maxTags` reached). Message: {@link TagEvictedMessage}. */
  tagEvicted: 'rrxc:tag:evicted',
  /** A user hook threw or rejected. Message: {@link HookErrorMessage}. */
  hookError: 'rrxc:hook:error',
  /** A tag store call failed or timed out outside a caller's reach (claiming rollback at exchange end, or retrying an undecided claim, or clearing a re-registered ID). Message: {@link TagStoreErrorMessage}. */
  tagStoreError: 'rrxc:tag-store:error',
} as const;

/**
 * Name of the `diagnostics_channel.tracingChannel` of exchanges: its
 * channels are `tracing:rrxc:exchange:start`, `:end`, `:asyncStart`,
 * `:asyncEnd` and `:error`, as Node's `tracingChannel()` names them. Every
 * exchange is one traced operation, its context an
 * {@link ExchangeTraceContext}:
 *
 * - `start` / `end` bracket its creation — for `synchronize()` and
 *   `request()` also the synchronous part of the operation, so a store an
 *   APM binds to `start` (`bindStore`) is the context the operation, and
 *   what it sends, runs in;
 * - `error` (only when it did not complete), then `asyncStart` and
 *   `asyncEnd` mark its end, with `result` set.
 *
 * Nothing is built while no one subscribes.
 *
 * @example
 * ```ts
 * import { tracingChannel } from 'node:diagnostics_channel';
 * import { EXCHANGE_TRACING, type ExchangeTraceContext } from 'rrxc';
 *
 * tracingChannel<unknown, ExchangeTraceContext>(EXCHANGE_TRACING).subscribe({
 *   start: (context) => console.log('exchange', context.exchange.id, 'opened'),
 *   end: () => {},
 *   asyncStart: () => {},
 *   asyncEnd: (context) => console.log('exchange', context.exchange.id, (context as ExchangeTraceContext).result?.status),
 *   error: (context) => console.log('exchange', context.exchange.id, 'did not complete:', context.error),
 * });
 * ```
 */
export const EXCHANGE_TRACING = 'rrxc:exchange';

/** The context of one exchange on the {@link EXCHANGE_TRACING} tracing channel; the same object for all its events. */
export interface ExchangeTraceContext {
  /** The controller that owns the exchange. */
  readonly controller: Controller<any, any>;
  /** The exchange. */
  readonly exchange: Exchange<any, any>;
  /** How it ended; set from `error`/`asyncStart` on. */
  result?: ExchangeResult<any, any>;
  /** Why it did not complete: an `ExchangeEndedError` with its status and reason; set on `error`. */
  error?: unknown;
}

/** Message of `rrxc:exchange:created`. */
export interface ExchangeMessage {
  /** The controller that owns the exchange. */
  readonly controller: Controller<any, any>;
  /** The exchange. */
  readonly exchange: Exchange<any, any>;
}

/** Message of `rrxc:exchange:ended`: the exchange and its result (status, duration, entries). */
export interface ExchangeEndedMessage extends ExchangeMessage {
  /** What `wait()` resolves with. */
  readonly result: ExchangeResult;
}

/** Message of `rrxc:request:registered`. */
export interface RequestMessage extends ExchangeMessage {
  /** The ID the request was registered under. */
  readonly correlationId: string;
  /** The trace context given to `registerRequest`, if any. */
  readonly carrier?: TraceCarrier;
}

/** Message of the `rrxc:response:*` channels, one per settled `registerResponse`. */
export interface ResponseMessage {
  /** The controller the reply was registered with. */
  readonly controller: Controller<any, any>;
  /** The reply's correlation ID. */
  readonly correlationId: string;
  /** What happened to it. */
  readonly outcome: ResponseOutcome;
  /**
   * The exchange it went to, when that exchange is open here: always for
   * `delivered` and `overwritten`, for `duplicate` while the exchange is
   * open. A delivered reply that completes its exchange is published before
   * that exchange's `rrxc:exchange:ended`.
   */
  readonly exchange?: Exchange<any, any>;
  /** The trace context its request was registered with, when the exchange is open here and one was given. */
  readonly requestCarrier?: TraceCarrier;
  /**
   * `true` on the owner for a reply another instance forwarded here: that
   * instance publishes the same outcome, so count replies where this is absent.
   */
  readonly forwarded?: true;
}

/** Message of `rrxc:rollback:tagged`. */
export interface RollbackMessage extends ExchangeMessage {
  /** The IDs tagged. */
  readonly correlationIds: readonly string[];
  /** The tag put on them. */
  readonly tag: string;
  /** Its TTL in ms (`0`: no expiry). */
  readonly ttl: number;
}

/** Message of `rrxc:tag:evicted`. */
export interface TagEvictedMessage {
  /** The ID whose tags were evicted before they expired. */
  readonly correlationId: string;
  /** The tags it still had. */
  readonly tags: readonly string[];
}

/** Message of `rrxc:hook:error`. */
export interface HookErrorMessage {
  /** The controller whose hook failed. */
  readonly controller: Controller<any, any>;
  /** Which hook. */
  readonly hook: 'onRollback';
  /** What it threw or rejected with. */
  readonly error: unknown;
}

/** Message of `rrxc:tag-store:error`. */
export interface TagStoreErrorMessage {
  /** The controller whose store failed. */
  readonly controller: Controller<any, any>;
  /** A `TagStoreError` whose `cause` is what the store threw. */
  readonly error: unknown;
  /** The IDs whose rollback tag may not have been written. */
  readonly correlationIds: readonly string[];
}

export const exchangeTracing = tracingChannel<unknown, ExchangeTraceContext>(EXCHANGE_TRACING);
export const exchangeCreatedChannel = channel(CHANNELS.exchangeCreated);
export const exchangeEndedChannel = channel(CHANNELS.exchangeEnded);
export const requestRegisteredChannel = channel(CHANNELS.requestRegistered);
export const responseChannels: Readonly<Record<ResponseOutcome, Channel>> = {
  delivered: channel(CHANNELS.responseDelivered),
  duplicate: channel(CHANNELS.responseDuplicate),
  overwritten: channel(CHANNELS.responseOverwritten),
  'rolled-back': channel(CHANNELS.responseRolledBack),
  committed: channel(CHANNELS.responseCommitted),
  unmatched: channel(CHANNELS.responseUnmatched),
};
export const rollbackTaggedChannel = channel(CHANNELS.rollbackTagged);
export const tagEvictedChannel = channel(CHANNELS.tagEvicted);
export const hookErrorChannel = channel(CHANNELS.hookError);
export const tagStoreErrorChannel = channel(CHANNELS.tagStoreError);
