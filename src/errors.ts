import { describeCause } from './_describe.js';
import type { ExchangeStatus } from './types.js';

/**
 * The stable `code` of every error rrxc throws, one per error class.
 */
export type RrxcErrorCode =
  | 'ERR_RRXC_INVALID_ARGUMENT'
  | 'ERR_RRXC_CORRELATION_ID_CONFLICT'
  | 'ERR_RRXC_EXCHANGE_SEALED'
  | 'ERR_RRXC_EXCHANGE_ENDED'
  | 'ERR_RRXC_CONTROLLER_CLOSED'
  | 'ERR_RRXC_CAPACITY'
  | 'ERR_RRXC_TAG_STORE'
  | 'ERR_RRXC_BACKPLANE';

/**
 * Base class of every error rrxc throws or rejects with.
 *
 * Branch on `code` rather than on the message: codes are part of the public
 * contract, messages are for people.
 */
export abstract class RrxcError extends Error {
  /** The stable, machine-readable error code. */
  abstract readonly code: RrxcErrorCode;
}

/**
 * An argument or option had the wrong type or an out-of-range value:
 * a correlation ID that is not a non-empty string of at most `maxIdLength`
 * characters, a negative or NaN timeout or TTL, an unknown option.
 */
export class InvalidArgumentError extends RrxcError {
  /** Always `"InvalidArgumentError"`. */
  override readonly name = 'InvalidArgumentError';
  readonly code = 'ERR_RRXC_INVALID_ARGUMENT';
}

/**
 * A request was registered under a correlation ID that is already pending
 * somewhere in the same controller.
 */
export class CorrelationIdConflictError extends RrxcError {
  /** Always `"CorrelationIdConflictError"`. */
  override readonly name = 'CorrelationIdConflictError';
  readonly code = 'ERR_RRXC_CORRELATION_ID_CONFLICT';

  /**
   * @param correlationId - The ID that is already pending.
   */
  constructor(readonly correlationId: string) {
    super(`correlation ID \`${correlationId}\` is already pending in this controller`);
  }
}

/**
 * A request was registered on an exchange after `wait()` sealed it.
 */
export class ExchangeSealedError extends RrxcError {
  /** Always `"ExchangeSealedError"`. */
  override readonly name = 'ExchangeSealedError';
  readonly code = 'ERR_RRXC_EXCHANGE_SEALED';

  /**
   * @param exchangeId - The sealed exchange.
   */
  constructor(readonly exchangeId: string) {
    super(`exchange \`${exchangeId}\` is sealed by wait(): it takes no more requests`);
  }
}

/**
 * The exchange ended — aborted, timed out or closed — before the operation
 * could happen: a request registered on an ended exchange, or a `response`
 * whose reply never came. `cause` is the abort reason, when there is one.
 */
export class ExchangeEndedError extends RrxcError {
  /** Always `"ExchangeEndedError"`. */
  override readonly name = 'ExchangeEndedError';
  readonly code = 'ERR_RRXC_EXCHANGE_ENDED';

  /**
   * @param message - What could not happen.
   * @param status - How the exchange ended.
   * @param reason - The abort reason, passed on as `cause`.
   */
  constructor(
    message: string,
    readonly status: ExchangeStatus,
    ...reason: [reason?: unknown]
  ) {
    super(message, causeOf(reason));
  }
}

/**
 * The controller was closed; it takes no more work.
 */
export class ControllerClosedError extends RrxcError {
  /** Always `"ControllerClosedError"`. */
  override readonly name = 'ControllerClosedError';
  readonly code = 'ERR_RRXC_CONTROLLER_CLOSED';

  constructor() {
    super('the controller is closed');
  }
}

/**
 * Registering one more request would exceed `maxPendingRequests`.
 */
export class CapacityError extends RrxcError {
  /** Always `"CapacityError"`. */
  override readonly name = 'CapacityError';
  readonly code = 'ERR_RRXC_CAPACITY';

  /**
   * @param limit - The `maxPendingRequests` in force.
   */
  constructor(readonly limit: number) {
    super(`cannot register more than ${limit} pending requests (maxPendingRequests)`);
  }
}

/**
 * The tag store failed or did not answer within `storeTimeout`. The store's
 * own error (or p-timeout's `TimeoutError`) is the `cause`.
 */
export class TagStoreError extends RrxcError {
  /** Always `"TagStoreError"`. */
  override readonly name = 'TagStoreError';
  readonly code = 'ERR_RRXC_TAG_STORE';

  /**
   * @param operation - The store method that failed.
   * @param cause - What the store threw, or the timeout.
   */
  constructor(
    readonly operation: string,
    cause: unknown,
  ) {
    super(`tag store ${operation}() failed: ${describeCause(cause)}`, { cause });
  }
}

/**
 * Why a backplane could not give an outcome:
 *
 * - `owner-unreachable`: the owning instance did not answer in time, yet it
 *   may still deliver the reply (it is alive and its deadline has not
 *   passed): nobody can say yet;
 * - `transport`: the shared medium (Redis, …) failed or timed out;
 * - `codec`: the reply could not be encoded here or decoded at its owner;
 * - `owner-failed`: the owner received the reply but its own routing failed
 *   (typically its tag store);
 * - `closed`: the backplane was closed while the reply was being forwarded.
 */
export type BackplaneFailure = 'owner-unreachable' | 'transport' | 'codec' | 'owner-failed' | 'closed';

/**
 * A reply could not be routed across instances, and nobody can tell whether
 * its owner got it. `registerResponse` rejects with it rather than guess an
 * outcome: the one certainty is that this call did not deliver it. Retrying
 * the same reply later is safe — a copy that did arrive meanwhile is then
 * reported `duplicate`.
 */
export class BackplaneError extends RrxcError {
  /** Always `"BackplaneError"`. */
  override readonly name = 'BackplaneError';
  readonly code = 'ERR_RRXC_BACKPLANE';

  /**
   * @param failure - What went wrong, as a stable string.
   * @param message - What could not be done, for people.
   * @param cause - The underlying error, when there is one.
   */
  constructor(
    readonly failure: BackplaneFailure,
    message: string,
    ...cause: [cause?: unknown]
  ) {
    super(message, causeOf(cause));
  }
}

/**
 * The options that give an error its `cause`, when one was passed: a rest
 * tuple tells "no cause" apart from a cause that is `undefined`.
 */
function causeOf(cause: [cause?: unknown]): ErrorOptions | undefined {
  return cause.length > 0 ? { cause: cause[0] } : undefined;
}
