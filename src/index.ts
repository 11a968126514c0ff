/**
 * rrxc — sync-over-async request/response for Node.js.
 *
 * A {@link Controller} creates {@link Exchange}s bound to an `AbortSignal`
 * and/or a timeout; each outgoing request is registered under a correlation
 * ID; replies arriving anywhere are routed by ID to their exchange in O(1);
 * IDs left unanswered when an exchange ends are tagged for rollback, so a
 * late reply can be acknowledged and compensated instead of requeued forever.
 *
 * @packageDocumentation
 * @module rrxc
 */
export { Controller } from './controller.js';
export { Exchange } from './exchange.js';
export { claimCommitted, type ClaimCommittedOptions, type CommitDecision } from './commit.js';
export { DEFAULT_MAX_TAGS, MemoryTagStore, type MemoryTagStoreOptions } from './memory-tag-store.js';
export type { Backplane, BackplaneRouter, TagStore } from './adapters.js';
export { MAX_TIMEOUT, systemClock, type Clock } from './clock.js';
export {
  RrxcError,
  InvalidArgumentError,
  CorrelationIdConflictError,
  ExchangeSealedError,
  ExchangeEndedError,
  ControllerClosedError,
  CapacityError,
  TagStoreError,
  BackplaneError,
  type BackplaneFailure,
  type RrxcErrorCode,
} from './errors.js';
export {
  DEFAULT_COMMITTED_TAG,
  DEFAULT_DUPLICATE_WINDOW,
  DEFAULT_MAX_DUPLICATES,
  DEFAULT_MAX_ID_LENGTH,
  DEFAULT_MAX_PENDING_REQUESTS,
  DEFAULT_ROLLBACK_TAG,
  DEFAULT_ROLLBACK_TTL,
  DEFAULT_STORE_TIMEOUT,
  DEFAULT_TIMEOUT,
  type ClaimOptions,
  type ControllerOptions,
  type CreateExchangeOptions,
  type RegisterRequestOptions,
  type RegisterResponseOptions,
  type RequestOptions,
  type SynchronizeOptions,
  type TagOptions,
} from './options.js';
export {
  CHANNELS,
  EXCHANGE_TRACING,
  type ExchangeTraceContext,
  type ExchangeEndedMessage,
  type ExchangeMessage,
  type HookErrorMessage,
  type RequestMessage,
  type ResponseMessage,
  type RollbackMessage,
  type TagEvictedMessage,
  type TagStoreErrorMessage,
} from './events.js';
export type {
  Awaitable,
  ExchangeResult,
  ExchangeState,
  ExchangeStatus,
  RequestHandle,
  RequestResponse,
  ResponseOutcome,
  TraceCarrier,
} from './types.js';
