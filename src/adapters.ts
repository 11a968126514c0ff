// The contracts of rrxc's adapters: where tags live, and what connects the
// controllers of several instances. Each implementation passes the suite of
// the same name in test/conformance/.
import type { Awaitable, ResponseOutcome } from './types.js';

/**
 * Where tags live: string labels on correlation IDs, each with its own TTL.
 * The controller puts the rollback tag on every ID an exchange leaves
 * unanswered and looks it up when a reply matches no open exchange.
 *
 * Every method may answer synchronously or with a promise, so the same
 * controller code runs against the in-memory store and a shared one (Redis).
 * An asynchronous answer is bounded by the controller's `storeTimeout`.
 *
 * | method | must |
 * |---|---|
 * | `tag(id, tag, ttl)` | add `tag` to `id`, expiring after `ttl` ms (`0`: never); tagging again replaces the TTL |
 * | `untag(id, tag)` | remove it; answer whether a live tag was removed |
 * | `getTags(id)` | answer the live (unexpired) tags of `id`, in any order |
 * | `claim(id, tag, ttl, rivals)` | atomically: unless `id` carries a live tag among `tag` and `rivals`, add `tag` as `tag()` would and answer `undefined`; else answer that live tag and change nothing. Of concurrent claims on one ID, on every instance sharing the store, exactly one is answered `undefined` |
 * | `close()` | optional: release what the store owns |
 *
 * `claim` is how an ID is settled once: the end of an exchange claims the
 * rollback tag against the committed tag, a worker claims the committed tag
 * against the rollback tag, a consumer claims the compensated tag before it
 * compensates. Whoever is answered `undefined` decided; everyone else is told
 * what was decided. A store shared by several processes must make it one
 * atomic step on the server (a script, a transaction), never a read and a
 * write from the client.
 */
export interface TagStore {
  /** Adds `tag` to `id` for `ttl` milliseconds (`0`: no expiry). */
  tag(id: string, tag: string, ttl: number): Awaitable<void>;
  /** Removes `tag` from `id`; answers whether it was there and live. */
  untag(id: string, tag: string): Awaitable<boolean>;
  /** The live tags of `id`. */
  getTags(id: string): Awaitable<readonly string[]>;
  /**
   * Settles `id` once: adds `tag` (for `ttl` ms, `0`: no expiry) unless `id`
   * already carries a live tag among `tag` and `rivals`.
   *
   * @returns `undefined` when this call added `tag`; otherwise the live tag that was there first, and nothing changed.
   */
  claim(id: string, tag: string, ttl: number, rivals: readonly string[]): Awaitable<string | undefined>;
  /** Releases what the store owns. Called by `controller.close()` only for a store the controller created. */
  close?(): Awaitable<void>;
}


/**
 * What a controller offers its backplane: routing of replies that other
 * instances forwarded here, within this process only (never forwarded on,
 * so forwarding cannot loop).
 */
export interface BackplaneRouter {
  /** The controller's `rollbackTag`: a backplane that settles replies for dead owners tags with it. */
  readonly rollbackTag: string;
  /** The controller's `committedTag`: a rollback the backplane writes is a claim against it, and a reply for an ID that carries it is `committed`. */
  readonly committedTag: string;
  /** The controller's `rollbackTtl` (`0`: no expiry). */
  readonly rollbackTtl: number;
  /** The controller's `duplicateWindow`. */
  readonly duplicateWindow: number;
  /**
   * Routes a forwarded reply to a local exchange and answers the outcome:
   * `delivered`, `duplicate`, `overwritten`, `rolled-back`, `committed` or `unmatched`.
   * After the controller closed it answers `unmatched`.
   *
   * With `record`, a reply that would be delivered is held first — no other
   * copy takes its place, and its exchange does not time out or abort
   * before it is settled — and handed over only once `record()` resolves
   * `undefined`: the backplane made the delivery durable before anyone can
   * see it. `record()` resolving an outcome means "not delivered, this is
   * what became of it" (the request waits again); a rejection is passed
   * on. Closing or fencing the exchange meanwhile leaves the ID `undecided`
   * in its result, and what `record()` settles is then the answer.
   */
  route(correlationId: string, message: unknown, overwrite: boolean, record?: () => Promise<ResponseOutcome | undefined>): Promise<ResponseOutcome>;
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
 * not a recent duplicate, not an ID whose rollback tag is being written —
 * and then instead of its tag store: the owner
 * looks up its own tags, and for an ID no live instance owns the backplane
 * must answer `rolled-back` when the ID carries the rollback tag.
 *
 * | method | must |
 * |---|---|
 * | `start(router)` | remember the router and hand it the replies forwarded to this instance |
 * | `forward(id, message, overwrite)` | deliver the reply at its owner and answer the owner's outcome; for an ID no live instance owns, `rolled-back` if it carries the rollback tag, else `unmatched`; reject with `BackplaneError` when it cannot tell |
 * | `close()` | stop receiving and release what it owns |
 * | `idPrefix` | optional: a prefix naming this instance, which the controller puts on the IDs it generates, so forwarding needs no lookup; unused when the controller has `newId` |
 * | `requestRegistered(id, deadline)` | optional, must not throw: a request was registered here; `deadline` is when its exchange times out at the latest (clock ms) or `undefined` |
 * | `requestsEnded(answered, unanswered)` | optional, must not throw: an exchange ended; the unanswered IDs are being tagged for rollback; `answered` leaves out the replies the backplane recorded itself (`route` with `record`) |
 * | `checkLease()` | optional, must not throw: answers whether this instance may deliver now; when its claim has lapsed it fences first — calls `router.abandon()`, so the exchanges are ended before it answers `false`; while it merely cannot record a delivery (its store connection is down) it answers `false` without fencing, and the reply goes to `forward()`, which must then answer or reject as for any reply it cannot settle |
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
  /**
   * Put before every correlation ID the controller generates (not before
   * those of `newId`): it names this instance, so that another instance
   * forwards a reply to it without a look-up.
   */
  readonly idPrefix?: string;
  /** A request was registered on this instance. */
  requestRegistered?(correlationId: string, deadline: number | undefined): void;
  /** An exchange of this instance ended. */
  requestsEnded?(answered: readonly string[], unanswered: readonly string[]): void;
  /**
   * Asked before a reply is delivered to a local exchange: whether this
   * instance may deliver it now. One whose claim lapsed — other instances
   * may already have reported its IDs rolled back — fences first: it
   * abandons its exchanges through the router, then answers `false`, and
   * the reply is routed as the late reply it has become. One that only
   * cannot record the delivery right now answers `false` without fencing:
   * the exchange stays open, and the reply goes to {@link Backplane.forward}.
   */
  checkLease?(): boolean;
}
