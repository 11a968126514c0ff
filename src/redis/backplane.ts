import type { Backplane, BackplaneRouter } from '../adapters.js';
import { BackplaneError, InvalidArgumentError } from '../errors.js';
import { describeCause } from '../_describe.js';
import type { ResponseOutcome } from '../types.js';
import { Failures } from './channels.js';
import { Bounds, connectUrl, readyOrClosed, release, transportError, whenReady, type RedisConnection } from './_connection.js';
import { Keys } from './_keys.js';
import { Lease } from './_lease.js';
import { Ownership, ownerOf, unreachable } from './_ownership.js';
import { resolveBackplaneOptions, type RedisBackplaneOptions, type ResolvedBackplaneOptions } from './options.js';
import { defineScripts } from './_scripts.js';
import { RedisTagStore } from './tag-store.js';
import { AckWaits, AnswerLog, encodeAck, encodeForward, ERROR, GONE, isOutcome, NOBODY, Outbox, parseBatch, RETRY, type Frame } from './_wire.js';

/**
 * A {@link Backplane} on Redis: a reply that reaches any instance is
 * delivered by the instance that owns its exchange, exactly once, and the
 * receiving instance's `registerResponse` resolves with the owner's outcome.
 *
 * - Correlation IDs it generates start with the instance ID
 *   (`<instanceId>~<nanoid>`), so forwarding needs no lookup; for IDs the
 *   application chose, an ownership key in Redis names the owner.
 * - A reply is sent to its owner's pub/sub channel and acknowledged with the
 *   owner's outcome; unacknowledged sends are repeated, and the owner
 *   answers repeats from memory. Pub/sub may lose messages: a reply is never
 *   reported `delivered` without the owner's acknowledgement.
 * - Every instance holds a lease (heartbeat key) and keeps its pending
 *   generated IDs, with their deadlines, in one sorted set, written once per
 *   event-loop turn. When an owner stops answering and its lease lapsed, a
 *   Lua script atomically marks the ID rolled back: late replies after a
 *   crash are `rolled-back`. While its lease lives the owner decides, and a
 *   reply it does not answer gets a `BackplaneError` (unknown). A forwarded
 *   reply is recorded in Redis before the owner hands it to its exchange
 *   (which waits for it meanwhile), so a delivery is never rolled back by others. An owner that could not
 *   renew its lease in time ends its open exchanges itself (fencing), so it
 *   never delivers what another instance rolled back.
 *
 * See docs/distributed.md for the design, the guarantees and their limits.
 *
 * @example
 * ```ts
 * import { Controller } from 'rrxc';
 * import { RedisBackplane } from 'rrxc/redis';
 *
 * const backplane = await RedisBackplane.connect({ url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', prefix: 'orders:' });
 * const controller = new Controller({ backplane, tagStore: backplane.tagStore, timeout: 5_000 });
 * // …
 * await controller.close(); // also closes the backplane and its connections
 * ```
 */
export class RedisBackplane implements Backplane {
  /** This instance's name, the head of every ID it generates. */
  readonly instanceId: string;
  readonly #options: ResolvedBackplaneOptions;
  readonly #redis: RedisConnection;
  readonly #subscriber: RedisConnection;
  readonly #owned: readonly RedisConnection[];
  readonly #keys: Keys;
  readonly #channel: string;
  readonly #failures: Failures;
  /** Every Redis command, and closing, is bounded by `commandTimeout`; starting by `connectTimeout`. */
  readonly #commands: Bounds;
  readonly #connecting: Bounds;
  readonly #lease: Lease;
  readonly #ownership: Ownership;
  readonly #waits: AckWaits;
  readonly #answers: AnswerLog;
  readonly #outbox: Outbox;
  readonly #ready: Promise<void>;
  readonly #onMessage = (channel: string, batch: string): void => {
    if (channel === this.#channel) parseBatch(batch, this.#onFrame);
  };
  readonly #onReconnect = (): void => {
    this.#lease.renewNow();
    // What failed while it was down goes first, before anything made since.
    this.#ownership.retryNow();
  };
  readonly #onConnectionError = (error: unknown): void => this.#failures.report('connection', [], error);
  #router: BackplaneRouter | undefined;
  #tagStore: RedisTagStore | undefined;
  /** Number of the last forward sent: its answer comes back under it. */
  #seq = 0;
  #closed: Promise<void> | undefined;

  /**
   * Makes a backplane and waits until it is subscribed and its lease is
   * written, so that a wrong URL or a Redis that is down fails here rather
   * than on the first forwarded reply.
   *
   * @param options - See {@link RedisBackplaneOptions}.
   * @returns A backplane ready to be given to a `Controller`.
   * @throws {@link BackplaneError} (as a rejection; `transport`) when Redis does not answer within `connectTimeout`; the backplane is closed again.
   * @throws `InvalidArgumentError` (from `rrxc`) for bad options.
   */
  static async connect(options: RedisBackplaneOptions): Promise<RedisBackplane> {
    return readyOrClosed(new RedisBackplane(options));
  }

  /**
   * Makes a backplane and starts connecting, subscribing and heartbeating
   * without waiting; {@link RedisBackplane.connect} is the variant that waits.
   *
   * @param options - See {@link RedisBackplaneOptions}.
   * @throws `InvalidArgumentError` (from `rrxc`) for bad options, and for `rollbackTag`, `rollbackTtl` or `duplicateWindow`, which now come from the controller.
   */
  constructor(options: RedisBackplaneOptions) {
    const resolved = (this.#options = resolveBackplaneOptions(options));
    const { instanceId, clock } = resolved;
    this.instanceId = instanceId;
    this.#keys = new Keys(resolved.prefix);
    this.#channel = this.#keys.channel(instanceId);
    this.#failures = new Failures(instanceId);

    const owned: RedisConnection[] = [];
    if (resolved.url !== undefined) {
      this.#redis = connectUrl(resolved.url, resolved.redisOptions);
      this.#subscriber = connectUrl(resolved.url, resolved.redisOptions);
      owned.push(this.#redis, this.#subscriber);
    } else {
      this.#redis = resolved.redis!;
      this.#subscriber = resolved.subscriber ?? this.#redis.duplicate();
      if (resolved.subscriber === undefined) owned.push(this.#subscriber);
    }
    this.#owned = owned;
    for (const connection of owned) connection.on('error', this.#onConnectionError);

    this.#commands = new Bounds('commandTimeout', resolved.commandTimeout, clock);
    this.#connecting = new Bounds('connectTimeout', resolved.connectTimeout, clock);
    const parts = { options: resolved, redis: this.#redis, scripts: defineScripts(this.#redis), keys: this.#keys, failures: this.#failures, commands: this.#commands };
    this.#ownership = new Ownership({ ...parts, schedule: () => this.#outbox.schedule() });
    this.#lease = new Lease({
      ...parts,
      settings: () => this.#ownership.settings,
      abandon: (reason) => this.#router?.abandon(reason),
      renewed: () => this.#ownership.retryNow(),
      lost: () => this.#ownership.restore(),
    });
    this.#waits = new AckWaits(resolved.retryInterval, clock);
    // A sender resends for forwardTimeout plus one interval: a repeat must find the first answer that long.
    this.#answers = new AnswerLog(resolved.forwardTimeout + resolved.retryInterval, clock);
    this.#outbox = new Outbox(this.#redis, this.#commands, this.#waits, () => this.#ownership.write());

    this.#subscriber.on('message', this.#onMessage);
    // Back after an outage (a restarted Redis has lost the lease): renew at once, not at the next beat.
    this.#redis.on('ready', this.#onReconnect);
    this.#ready = this.#start();
    // Reported through ready() / connect(); a backplane used without awaiting
    // them reports failures on its forwards instead.
    this.#ready.catch(() => undefined);
  }

  /**
   * Resolves once the connections are ready, the subscription is active and
   * the first heartbeat is written.
   * @throws {@link BackplaneError} (as a rejection; `transport`) after `connectTimeout`, or when the backplane was closed.
   */
  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * A {@link RedisTagStore} on this backplane's command connection and key
   * prefix, closed with it. Give it to the same controller as `tagStore`, so
   * that rollback tags written by a crashed owner's survivors are the ones
   * every controller reads.
   */
  get tagStore(): RedisTagStore {
    const { maxTtl, clock } = this.#options;
    return (this.#tagStore ??= new RedisTagStore({ redis: this.#redis, prefix: this.#keys.prefix, maxTtl, clock }));
  }

  /**
   * Called by the controller's constructor: the router receives the replies
   * other instances forward here, and brings the controller's rollback tag,
   * rollback TTL and duplicate window.
   * @throws `InvalidArgumentError` (from `rrxc`) when a second controller tries to use this backplane.
   */
  start(router: BackplaneRouter): void {
    if (this.#router !== undefined) throw new InvalidArgumentError('a RedisBackplane serves one controller; make one per controller');
    this.#router = router;
    this.#ownership.start(router);
  }

  /**
   * `<instanceId>~`: the controller puts it before every ID it generates,
   * so that any instance can tell this one owns it.
   */
  get idPrefix(): string {
    return this.#ownership.idPrefix;
  }

  /**
   * Records that this instance owns `correlationId`: a generated ID joins
   * the batch for the pending set (written with the next write, at most
   * 5 ms later); an ID the application chose gets an ownership key (sent
   * with the turn's write). Failures go to `rrxc:redis:error`.
   * While fenced, the exchange is ended at once (see `leaseTtl`).
   */
  requestRegistered(correlationId: string, deadline: number | undefined): void {
    this.#lease.registering();
    this.#ownership.registered(correlationId, deadline);
  }

  /**
   * Ends what Redis holds about an ended exchange's IDs: answered IDs are
   * kept for the duplicate window; an unanswered ID the application chose
   * becomes a rollback tag in the same atomic step as its ownership goes.
   */
  requestsEnded(answered: readonly string[], unanswered: readonly string[]): void {
    this.#ownership.ended(answered, unanswered);
  }

  /**
   * Whether this instance may deliver a reply: not while fenced, nor once
   * its lease may have lapsed in Redis (other instances may then roll its
   * IDs back) — answering `false` for these, it first ends every open
   * exchange of the controller, so the reply is routed as a late one. Nor
   * while it cannot record the delivery (its command connection is down, or
   * earlier writes wait to be sent again): then it answers `false` without
   * ending anything, and the reply is refused with a `BackplaneError`
   * (see {@link RedisBackplane.forward}), to be retried.
   */
  checkLease(): boolean {
    return this.#lease.check() && this.#ownership.canRecord();
  }

  /**
   * Delivers a reply at the instance that owns it and answers that
   * instance's outcome.
   *
   * @returns `delivered`, `duplicate`, `overwritten`, `rolled-back`, `committed` or `unmatched`.
   * @throws {@link BackplaneError} (as a rejection) when it cannot tell what became of the reply: the owner cannot be reached and may still deliver, Redis fails, this instance cannot record a delivery of its own right now, or after `close()`. Unknown, not "not delivered": a retry is answered what was decided.
   */
  async forward(correlationId: string, message: unknown, overwrite: boolean): Promise<ResponseOutcome> {
    if (this.#closed !== undefined) throw closedError();
    const derived = ownerOf(correlationId);
    // A reply to an ID of ours that the controller did not deliver because
    // this instance cannot record a delivery now (or any ID the application
    // chose, whose owner may be us): nothing here may settle it meanwhile.
    if ((derived === undefined || derived === this.instanceId) && !this.#ownership.canRecord()) throw unrecordable(correlationId);
    let payload: string;
    try {
      payload = this.#options.codec.encode(message);
    } catch (error) {
      throw new BackplaneError('codec', `cannot encode the reply to \`${correlationId}\` for forwarding`, error);
    }
    if (typeof payload !== 'string') throw new BackplaneError('codec', `codec.encode() must return a string, got ${typeof payload}`);

    // One number for every send of this reply: the owner records which forward it delivered.
    const seq = ++this.#seq;
    let sent = false;
    if (derived !== undefined) {
      // The owner did not answer (or it is this instance, which no longer
      // holds the ID): its pending set and answered hashes decide. While they say it may still deliver,
      // and the forward was not recorded as delivered, try it once more
      // (held up in Redis, its record may come yet) before saying "unknown".
      for (let round = derived === this.instanceId ? 1 : 0; ; round++) {
        if (derived !== this.instanceId) {
          sent = true;
          const outcome = await this.#request(derived, seq, correlationId, payload, overwrite);
          if (outcome !== undefined) return outcome;
        }
        const outcome = await this.#ownership.settleOwned(derived, correlationId, sent ? seq : undefined);
        if (outcome === undefined) break;
        if (typeof outcome === 'string') return outcome;
        if (round >= 1) throw unreachable(outcome.owner, correlationId, this.#options.forwardTimeout);
      }
    }
    // An ID the application chose (or one the owner has no record of): its ownership decides.
    const held = await this.#ownership.lookup(correlationId);
    const direct = held === undefined || held.instanceId === derived || held.instanceId === this.instanceId;
    // As for a generated ID: while the record says pending, once more before "unknown".
    for (let round = direct ? 1 : 0; ; round++) {
      if (!direct) {
        const outcome = await this.#request(held.instanceId, seq, correlationId, payload, overwrite);
        if (outcome !== undefined) return outcome;
      }
      const outcome = await this.#ownership.settle(correlationId, held, direct && !sent ? undefined : seq);
      if (typeof outcome === 'string') return outcome;
      if (round >= 1) throw unreachable(outcome.owner, correlationId, this.#options.forwardTimeout);
    }
  }

  /**
   * Stops answering forwards (late ones are told to settle through Redis),
   * rejects forwards still waiting with {@link BackplaneError} (`closed`),
   * waits — at most `commandTimeout` — for background writes, deletes the
   * lease, and closes the connections the backplane made. Connections given
   * as `redis` or `subscriber` stay open. Idempotent.
   */
  close(): Promise<void> {
    return (this.#closed ??= this.#close());
  }

  async #close(): Promise<void> {
    this.#lease.stop();
    // Forwards waiting (or pausing between sends) go on now, and find the backplane closed.
    this.#waits.close();
    // The controller ended every exchange before closing us: write the last batch now, after what failed before.
    this.#ownership.retryNow();
    this.#outbox.flush();
    await this.#ownership.drained();
    this.#ownership.stop();
    this.#subscriber.off('message', this.#onMessage);
    this.#redis.off('ready', this.#onReconnect);
    if (!this.#owned.includes(this.#subscriber)) await this.#commands.quietly(() => this.#subscriber.unsubscribe(this.#channel));
    await this.#lease.relinquish();
    // Their error listener stays: a closed ioredis client may still emit one last error.
    await Promise.all(this.#owned.map((connection) => release(connection, this.#commands)));
    // Every command has settled or been given up on: no bound of ours may outlive close().
    this.#commands.clear();
  }

  async #start(): Promise<void> {
    let failure: BackplaneError | undefined;
    const failed = (why: string, cause?: unknown): BackplaneError => (failure = new BackplaneError('transport', `cannot start the Redis backplane: ${why}`, cause));
    const connecting = this.#connecting;
    try {
      await connecting.bound(
        (async () => {
          await Promise.all([whenReady(this.#redis, connecting, failed), whenReady(this.#subscriber, connecting, failed)]);
          await this.#subscriber.subscribe(this.#channel);
          await this.#lease.beat();
        })(),
        // A wait for a connection that ran out in the same sweep, just before, says more.
        (within) => failure ?? failed(`not ready within ${within}`),
      );
    } catch (error) {
      this.#lease.keepRenewing();
      throw error instanceof BackplaneError ? error : failed(describeCause(error), error);
    }
    if (this.#closed !== undefined) throw closedError();
    this.#lease.keepRenewing();
  }

  /**
   * Sends a reply to `owner` and waits for its outcome, resending every
   * `retryInterval`, for at most `forwardTimeout` (rounded up to a whole
   * interval). Answers `undefined` when the owner is gone, closing, fenced
   * or silent.
   *
   * The hot path of forwarding: no timer and no `Error` per reply — waits
   * share one timer lane, and sends share one PUBLISH per owner and turn.
   */
  async #request(owner: string, seq: number, id: string, payload: string, overwrite: boolean): Promise<ResponseOutcome | undefined> {
    const frame = encodeForward(this.instanceId, seq, overwrite, id, payload);
    const channel = this.#keys.channel(owner);
    const { clock } = this.#options;
    const giveUpAt = clock.now() + this.#options.forwardTimeout;
    try {
      for (;;) {
        if (this.#closed !== undefined) throw closedError();
        const answered = this.#waits.wait(seq);
        this.#outbox.send(channel, frame, seq);
        const got = await answered;
        if (got === RETRY) {
          if (clock.now() >= giveUpAt) return undefined;
          continue;
        }
        if (got === NOBODY) {
          // Nobody listens: dead, closed, or reconnecting. Only the last is worth waiting for.
          if (!(await this.#ownership.alive(owner)) || clock.now() >= giveUpAt) return undefined;
          await this.#waits.pause();
          continue;
        }
        if (typeof got !== 'string') throw transportError('PUBLISH', got.error);
        if (isOutcome(got)) return got;
        if (got === GONE) {
          if (this.#closed !== undefined) throw closedError();
          return undefined;
        }
        throw new BackplaneError(got.startsWith(`${ERROR}codec`) ? 'codec' : 'owner-failed', `instance \`${owner}\` could not route the reply to \`${id}\`: ${got.slice(ERROR.length)}`);
      }
    } finally {
      this.#waits.forget(seq);
    }
  }

  /**
   * A frame on this instance's channel: the answer to one of our forwards,
   * or a reply forwarded here, answered once. A delivery is recorded in
   * Redis, by the script that publishes its acknowledgement, before the
   * exchange gets the reply; while this instance cannot record one, a
   * forward is not answered at all (its sender sends it again).
   */
  readonly #onFrame = (frame: Frame): void => {
    if (frame.kind === 'ack') {
      this.#waits.answer(frame.seq, frame.answer);
      return;
    }
    if (this.#router !== undefined && this.#closed === undefined && !this.#ownership.canRecord()) return;
    const { from, seq, id } = frame;
    // Set when the script that recorded this frame's delivery published its acknowledgement.
    let acknowledged = false;
    this.#answers.respond(
      from,
      seq,
      () => this.#routeForwarded(from, seq, id, frame.payload, frame.overwrite, () => (acknowledged = true)),
      (answer) => {
        if (!acknowledged || answer !== 'delivered') this.#outbox.send(this.#keys.channel(from), encodeAck(seq, answer));
      },
    );
  };

  /**
   * Decodes a reply forwarded here and routes it to its exchange; answers the outcome, {@link GONE} or an `error:` answer.
   * @param acknowledged - Called when the script that recorded its delivery published the acknowledgement.
   */
  #routeForwarded(from: string, seq: number, id: string, payload: string, overwrite: boolean, acknowledged: () => void): Promise<string> {
    // A rejection (the controller's own routing failed) becomes an `error:` answer in the answer log.
    const router = this.#router;
    if (router === undefined || this.#closed !== undefined) return Promise.resolve(GONE);
    // Fenced (or about to be: the lease may have lapsed in Redis): another
    // instance may roll this ID back, so this one must not deliver it.
    if (!this.#lease.check()) return Promise.resolve(GONE);
    let message: unknown;
    try {
      message = this.#options.codec.decode(payload);
    } catch (error) {
      this.#failures.report('decode', [id], error);
      return Promise.resolve(`${ERROR}codec: ${describeCause(error)}`);
    }
    // Held in its exchange while a script records the delivery and
    // publishes its acknowledgement, handed over after: should this
    // instance die before, nothing was delivered; after, Redis holds it.
    // Refused: Redis holds "not delivered" (another instance rolled it
    // back): the claim says whether that is a rollback or a commit a worker
    // claimed first.
    const record = (): Promise<ResponseOutcome | undefined> =>
      this.#ownership.recordDelivery(id, from, seq).then((recorded) => {
        if (!recorded) return this.#ownership.claimRollback(id);
        acknowledged();
        return undefined;
      });
    // Already answered: by this very forward, if its answer was forgotten (a
    // repeat that came after `forwardTimeout`, held up in Redis)? Redis says.
    return router
      .route(id, message, overwrite, record)
      .then((outcome) => (outcome === 'duplicate' ? this.#ownership.deliveredBy(id, from, seq).then((it) => (it ? 'delivered' : outcome)) : outcome));
  }
}

function unrecordable(id: string): BackplaneError {
  return new BackplaneError(
    'transport',
    `cannot deliver the reply to \`${id}\` now: this instance could not record the delivery in Redis (its command connection is down, or earlier writes wait to be sent again); unknown, not delivered — retry`,
  );
}

function closedError(): BackplaneError {
  return new BackplaneError('closed', 'the Redis backplane is closed');
}
