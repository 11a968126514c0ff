import { RrxcError, type RrxcErrorCode } from '../errors.js';

/**
 * Why a backplane could not give an outcome:
 *
 * - `owner-unreachable`: the owning instance did not answer within
 *   `forwardTimeout`, its lease is alive and its request's deadline has not
 *   passed, so it may still deliver the reply: nobody can say yet;
 * - `redis`: a Redis command failed or timed out (`cause` says which);
 * - `codec`: the reply could not be encoded here or decoded at its owner;
 * - `owner-failed`: the owner received the reply but its own routing failed
 *   (typically its tag store);
 * - `closed`: the backplane was closed while the reply was being forwarded.
 */
export type BackplaneFailure = 'owner-unreachable' | 'redis' | 'codec' | 'owner-failed' | 'closed';

/**
 * A reply could not be routed across instances, and nobody can tell whether
 * its owner got it. `registerResponse` rejects with it instead of guessing an
 * outcome: the one certainty is that the reply was not reported `delivered`.
 * Retrying the same reply later is safe — a copy that did arrive meanwhile
 * is reported `duplicate`.
 *
 * Its `code` is `ERR_RRXC_BACKPLANE`.
 *
 * @example
 * ```ts
 * try {
 *   outcome = await controller.registerResponse({ correlationId, message });
 * } catch (error) {
 *   if ((error as { code?: string }).code === 'ERR_RRXC_BACKPLANE') return msg.nack({ requeue: true });
 *   throw error;
 * }
 * ```
 */
export class BackplaneError extends RrxcError {
  /** Always `"BackplaneError"`. */
  override readonly name = 'BackplaneError';
  // Not yet in the core's code union; see docs/distributed.md.
  readonly code = 'ERR_RRXC_BACKPLANE' as string as RrxcErrorCode;

  /**
   * @param failure - What went wrong, as a stable string.
   * @param message - What could not be done, for people.
   * @param cause - The underlying error, when there is one.
   */
  constructor(
    readonly failure: BackplaneFailure,
    message: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}
