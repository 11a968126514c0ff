import type { Awaitable, ResponseOutcome } from './types.js';

/**
 * What a controller offers its backplane: routing of replies that other
 * instances forwarded here, within this process only (never forwarded on,
 * so forwarding cannot loop).
 */
export interface BackplaneRouter {
  /**
   * Routes a forwarded reply to a local exchange and answers the outcome:
   * `delivered`, `duplicate`, `overwritten`, `rolled-back` or `unmatched`.
   */
  deliver(correlationId: string, message: unknown, overwrite: boolean): Promise<ResponseOutcome>;
}

/**
 * Connects the controllers of several instances so that a reply reaching
 * any of them is delivered by the one that owns its exchange. The controller
 * consults it only for replies it cannot route itself: not pending here, not
 * a recent duplicate, not tagged for rollback.
 *
 * | method | must |
 * |---|---|
 * | `start(router)` | remember the router and hand it the replies forwarded to this instance |
 * | `forward(id, message, overwrite)` | deliver the reply at its owner and answer the owner's outcome; `unmatched` if no instance owns it |
 * | `close()` | stop receiving and release what it owns |
 */
export interface Backplane {
  /** Called once by the controller's constructor. */
  start(router: BackplaneRouter): void;
  /** Routes a reply this instance does not own; answers the owner's outcome. */
  forward(correlationId: string, message: unknown, overwrite: boolean): Promise<ResponseOutcome>;
  /** Called once by `controller.close()`. */
  close(): Awaitable<void>;
}
