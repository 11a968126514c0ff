import type { Awaitable, ResponseOutcome } from './types.js';

/**
 * What a controller offers its backplane: routing of replies that other
 * instances forwarded here, within this process only (never forwarded on,
 * so forwarding cannot loop).
 */
export interface BackplaneRouter {
  /** The controller's `rollbackTag`: a backplane that settles replies for dead owners tags with it. */
  readonly rollbackTag: string;
  /** The controller's `rollbackTtl` (`0`: no expiry). */
  readonly rollbackTtl: number;
  /** The controller's `duplicateWindow`. */
  readonly duplicateWindow: number;
  /**
   * Routes a forwarded reply to a local exchange and answers the outcome:
   * `delivered`, `duplicate`, `overwritten`, `rolled-back` or `unmatched`.
   * After the controller closed it answers `unmatched`.
   */
  deliver(correlationId: string, message: unknown, overwrite: boolean): Promise<ResponseOutcome>;
  /**
   * Ends every open exchange of this controller as `aborted` with `reason`,
   * tagging their unanswered IDs: fencing, for a backplane that lost its
   * claim on them (other instances may already have rolled them back), so
   * that this instance never delivers what they settled. The controller
   * stays open for new exchanges.
   */
  abandon(reason: unknown): void;
}

/**
 * Connects the controllers of several instances so that a reply reaching
 * any of them is delivered by the one that owns its exchange. The controller
 * consults it only for replies it cannot route itself — not pending here,
 * not a recent duplicate — and then instead of its tag store: the owner
 * looks up its own tags, and for an ID no live instance owns the backplane
 * must answer `rolled-back` when the ID carries the rollback tag.
 *
 * | method | must |
 * |---|---|
 * | `start(router)` | remember the router and hand it the replies forwarded to this instance |
 * | `forward(id, message, overwrite)` | deliver the reply at its owner and answer the owner's outcome; for an ID no live instance owns, `rolled-back` if it carries the rollback tag, else `unmatched`; reject with `BackplaneError` when it cannot tell |
 * | `close()` | stop receiving and release what it owns |
 * | `newCorrelationId()` | optional: IDs that name this instance, so forwarding needs no lookup; used unless the controller has `newId` |
 * | `requestRegistered(id, deadline)` | optional, must not throw: a request was registered here; `deadline` is when its exchange times out at the latest (clock ms) or `undefined` |
 * | `requestsEnded(answered, unanswered)` | optional, must not throw: an exchange ended; the unanswered IDs are being tagged for rollback |
 * | `mayDeliver()` | optional, must not throw: `false` while this instance must not deliver (fenced) — after calling `router.abandon()`, so the exchanges are ended before it answers |
 *
 * The two notifications are synchronous and on the registration path: an
 * implementation queues or pipelines its own I/O and reports its own
 * failures.
 */
export interface Backplane {
  /** Called once by the controller's constructor. */
  start(router: BackplaneRouter): void;
  /** Routes a reply this instance does not own; answers the owner's outcome. */
  forward(correlationId: string, message: unknown, overwrite: boolean): Promise<ResponseOutcome>;
  /** Called once by `controller.close()`, after every exchange ended. */
  close(): Awaitable<void>;
  /** Makes a correlation ID that names this instance. */
  newCorrelationId?(): string;
  /** A request was registered on this instance. */
  requestRegistered?(correlationId: string, deadline: number | undefined): void;
  /** An exchange of this instance ended. */
  requestsEnded?(answered: readonly string[], unanswered: readonly string[]): void;
  /**
   * Asked before a reply is delivered to a local exchange. A backplane whose
   * claim on its IDs has lapsed — other instances may already have reported
   * them rolled back — abandons its exchanges through the router and answers
   * `false`; the reply is then routed as the late reply it has become.
   */
  mayDeliver?(): boolean;
}
