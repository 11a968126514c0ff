/**
 * Trace context in a propagator's text form — W3C `traceparent` and
 * `tracestate`, or any other fields — as `propagation.inject()` writes it.
 */
export type TraceCarrier = Readonly<Record<string, string>>;

/** A value, or a promise of it: what adapter methods may return. */
export type Awaitable<T> = T | PromiseLike<T>;

/**
 * What `registerResponse` did with a reply. Routine routing results are
 * values, not exceptions, so a queue consumer can decide ack, nack or requeue
 * with one `switch`.
 *
 * - `delivered`: handed to the exchange that is waiting for it;
 * - `duplicate`: the ID was already answered (its exchange is still open, or
 *   ended within `duplicateWindow`); nothing changed;
 * - `overwritten`: like `duplicate`, but `overwrite: true` replaced the
 *   stored response of a still-open exchange;
 * - `rolled-back`: the ID carries the rollback tag — its exchange ended before
 *   this reply came; acknowledge the message and compensate;
 * - `committed`: the ID carries the committed tag — the worker claimed the
 *   work committed before the requester's exchange ended, so it was not
 *   rolled back (the requester's result lists it in `committed`);
 *   acknowledge, nothing to compensate;
 * - `unmatched`: nobody here (or, with a backplane, anywhere) owns the ID.
 */
export type ResponseOutcome = 'delivered' | 'duplicate' | 'overwritten' | 'rolled-back' | 'committed' | 'unmatched';

/** Lifecycle of an exchange: open → sealed (by `wait()`) → ended. */
export type ExchangeState = 'open' | 'sealed' | 'ended';

/**
 * How an exchange ended:
 *
 * - `completed`: every request was answered after `wait()` sealed it;
 * - `aborted`: its signal aborted;
 * - `timed-out`: its timeout fired, or its signal aborted with a
 *   `TimeoutError` (as `AbortSignal.timeout()` does);
 * - `closed`: `close()` was called on it or on its controller, or the
 *   operation given to `synchronize()` threw.
 */
export type ExchangeStatus = 'completed' | 'aborted' | 'timed-out' | 'closed';

/**
 * One request of an exchange and, once it came, its response. A snapshot:
 * it does not change after it was handed out.
 */
export interface RequestResponse<Req = unknown, Res = unknown> {
  /** The correlation ID the request was registered under. */
  readonly correlationId: string;
  /** The request message given to `registerRequest`, if any. */
  readonly request: Req | undefined;
  /** The response message; present when `answered`. */
  readonly response?: Res;
  /** Whether a reply arrived before the exchange ended. */
  readonly answered: boolean;
  /** When the request was registered (ms since the epoch, from the clock). */
  readonly requestedAt: number;
  /** When the reply arrived; present when `answered`. */
  readonly respondedAt?: number;
  /** `respondedAt - requestedAt`; present when `answered`. */
  readonly latencyMs?: number;
}

/**
 * What `wait()`, `synchronize()` and the `rrxc:exchange:ended` channel report
 * about an ended exchange.
 */
export interface ExchangeResult<Req = unknown, Res = unknown> {
  /** The exchange's `id`. */
  readonly exchangeId: string;
  /** How the exchange ended. */
  readonly status: ExchangeStatus;
  /** Whether every request was answered. */
  readonly complete: boolean;
  /**
   * The abort reason, kept as the very value given (`undefined`, `null`, `0`,
   * a string or an Error). Present when the exchange ended by an abort, a
   * timeout or a `close(reason)` with a reason.
   */
  readonly reason?: unknown;
  /** When the exchange was created (ms since the epoch). */
  readonly createdAt: number;
  /** When it ended (ms since the epoch). */
  readonly endedAt: number;
  /** `endedAt - createdAt`. */
  readonly durationMs: number;
  /** Every request with its response, in registration order. */
  readonly entries: readonly RequestResponse<Req, Res>[];
  /** The IDs left unanswered that were tagged for rollback: a late reply to one is `rolled-back`. */
  readonly unanswered: readonly string[];
  /**
   * The IDs left unanswered that a worker had claimed committed first
   * (`claimCommitted`): not tagged for rollback, nothing to compensate —
   * the work is done, only its reply is missing. An HTTP handler answers
   * "202 Accepted" for them rather than "504".
   */
  readonly committed: readonly string[];
  /**
   * The IDs left unanswered whose rollback could not be recorded: the tag
   * store failed or did not answer within `storeTimeout`. Their outcome is
   * unknown — a worker may still commit them. The controller keeps claiming
   * them in the background (and for any late reply to one) until the store
   * answers; reported on `rrxc:tag-store:error`. With a backplane, also
   * an ID whose forwarded reply was still being recorded in the shared
   * store when the exchange was closed or fenced: delivered or not, the
   * store decides, and a late reply is told which.
   */
  readonly undecided: readonly string[];
}

/**
 * What `registerRequest` returns: the ID to stamp on the outgoing message and
 * a promise of its reply.
 */
export interface RequestHandle<Res = unknown> {
  /** The correlation ID to send with the request. */
  readonly correlationId: string;
  /**
   * Resolves with the reply. Rejects with `ExchangeEndedError` when the
   * exchange ends first. Leaving it unobserved never causes an unhandled
   * rejection.
   */
  readonly response: Promise<Res>;
}
