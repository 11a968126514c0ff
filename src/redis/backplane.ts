import { customAlphabet, nanoid } from 'nanoid';
import { Command, type Redis, type RedisOptions } from 'ioredis';
import type { Backplane, BackplaneRouter } from '../adapters.js';
import type { Clock } from '../clock.js';
import { BackplaneError, InvalidArgumentError } from '../errors.js';
import { describe, describeCause } from '../_describe.js';
import { checkClock, checkMethods, checkOptionsObject } from '../_validate.js';
import type { ResponseOutcome } from '../types.js';
import { conflictChannel, errorChannel, leaseLostChannel, type RedisConflictMessage, type RedisErrorMessage, type RedisLeaseLostMessage } from './channels.js';
import { withTimeout } from '../timing/with-timeout.js';
import { checkConnectionOptions, connectUrl, corked, readyOrClosed, release, whenReady } from './_connection.js';
import { checkPrefix, DEFAULT_PREFIX, Keys } from './_keys.js';
import { TimerLane, type DeadlineTarget } from '../timing/timer-lane.js';
import { checkDuration, checkRedisTtl, clampTtl } from './_options.js';
import { defineScripts, scriptRunner, type RedisConnection, type ScriptRunner, type Scripts } from './_scripts.js';
import { DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_TTL, RedisTagStore } from './tag-store.js';

/** Default {@link RedisBackplaneOptions.forwardTimeout}. */
export const DEFAULT_FORWARD_TIMEOUT = 2_000;
/** Default {@link RedisBackplaneOptions.retryInterval}. */
export const DEFAULT_RETRY_INTERVAL = 250;
/** Default {@link RedisBackplaneOptions.leaseTtl}. */
export const DEFAULT_LEASE_TTL = 10_000;
/** Default {@link RedisBackplaneOptions.deadlineGrace}. */
export const DEFAULT_DEADLINE_GRACE = 1_000;
/** Default {@link RedisBackplaneOptions.commandTimeout}. */
export const DEFAULT_COMMAND_TIMEOUT = 2_000;

/**
 * How forwarded replies cross the wire: each message is encoded to a string
 * on the instance that received it and decoded on its owner.
 */
export interface RedisCodec {
  /** Turns a reply message into a string. May throw for what it cannot encode. */
  encode(message: unknown): string;
  /** Turns a string made by `encode` back into the message. */
  decode(text: string): unknown;
}

/** The default codec: JSON, with `undefined` (no message) kept as `undefined`. */
export const JSON_CODEC: RedisCodec = {
  encode: (message) => (message === undefined ? '' : JSON.stringify(message)),
  decode: (text) => (text === '' ? undefined : JSON.parse(text)),
};

/**
 * Options of {@link RedisBackplane}. Give exactly one of `redis` and `url`;
 * an unknown key is an error (it is usually a typo). Every instance of a
 * service must use the same `prefix`; the rollback tag, its TTL and the
 * duplicate window come from the controller the backplane serves (and must
 * be the same on every instance). Durations in ms are at most `MAX_TIMEOUT`
 * (from `rrxc`), the longest timer Node holds; `maxTtl`, which is no timer,
 * at most `Number.MAX_SAFE_INTEGER`.
 */
export interface RedisBackplaneOptions {
  /**
   * The ioredis connection (`Redis` or `Cluster`) for commands. It stays
   * yours: closing the backplane leaves it open. Recommended settings:
   * `enableAutoPipelining: true`, and `enableOfflineQueue: false` so that an
   * outage fails fast instead of queueing without bound.
   */
  redis?: RedisConnection;
  /**
   * A connection for this instance's subscription, used for nothing else
   * (Redis puts a subscribing connection in a mode without other commands).
   * It stays yours.
   * @defaultValue `redis.duplicate()`, which the backplane owns and closes
   */
  subscriber?: RedisConnection;
  /**
   * A Redis URL to connect to; the backplane makes both connections and
   * closes them in `close()`.
   */
  url?: string;
  /** ioredis options for the connections made from `url`, over rrxc's defaults. */
  redisOptions?: RedisOptions;
  /**
   * Prefix of every key and channel; the same on every instance of a
   * service. No `{` or `}`.
   * @defaultValue `"rrxc:"`
   */
  prefix?: string;
  /**
   * This instance's name, unique among live instances: it heads every
   * correlation ID the backplane generates. Letters, digits, `_` and `-`.
   * @defaultValue 12 random characters, new for every backplane
   */
  instanceId?: string;
  /**
   * Milliseconds a forwarded reply may wait for its owner's acknowledgement,
   * resending every `retryInterval` (so the wait is rounded up to a whole
   * number of intervals). After that Redis decides: `rolled-back` if the
   * owner is dead or the deadline passed, else a {@link BackplaneError}
   * (`owner-unreachable`).
   * @defaultValue 2 000
   */
  forwardTimeout?: number;
  /**
   * Milliseconds without an acknowledgement after which a forwarded reply is
   * sent again (its owner answers a repeat from memory, never delivering twice).
   * @defaultValue 250
   */
  retryInterval?: number;
  /**
   * Milliseconds this instance counts as alive after each heartbeat (renewed
   * every third of it). Once it lapses, other instances roll back this
   * instance's pending IDs when a reply for one reaches them; and this
   * instance, when no renewal succeeded for that long (by its own clock),
   * ends its open exchanges as `aborted` (fencing), so that it never
   * delivers what the others rolled back.
   * @defaultValue 10 000
   */
  leaseTtl?: number;
  /**
   * Milliseconds past a request's deadline before another instance may roll
   * it back on the owner's behalf: room for the owner's own timer to fire late.
   * @defaultValue 1 000
   */
  deadlineGrace?: number;
  /**
   * Milliseconds each Redis command may take on the forwarding path (and
   * `close()` waits for background writes).
   * @defaultValue 2 000
   */
  commandTimeout?: number;
  /**
   * Milliseconds {@link RedisBackplane.connect} waits for Redis.
   * @defaultValue 5 000
   */
  connectTimeout?: number;
  /**
   * Longest life of any key written, in ms (rollback tags with TTL `0`,
   * ownership records of requests without a deadline).
   * @defaultValue 2 592 000 000 (30 days)
   */
  maxTtl?: number;
  /**
   * How reply messages are encoded for forwarding.
   * @defaultValue {@link JSON_CODEC}
   */
  codec?: RedisCodec;
  /**
   * Source of time and timers (retries, heartbeats), for tests. Deadlines
   * and expiry are measured in Redis server time.
   * @defaultValue `systemClock` (from `rrxc`)
   */
  clock?: Clock;
}

/** A forwarded reply, or an acknowledgement, as sent over pub/sub. */
const FORWARD = 'f';
const ACK = 'a';
/** Acknowledgement payloads beyond the outcomes: the owner will not decide (closed, or fenced). */
const GONE = 'gone';
const ERROR = 'error:';
/** What an attempt settles with besides an answer. */
const RETRY = Symbol('retry');
const NOBODY = Symbol('nobody listens');
type Attempt = string | typeof RETRY | typeof NOBODY | { readonly error: unknown };

const BACKPLANE_KEYS: ReadonlySet<string> = new Set<keyof RedisBackplaneOptions>([
  'redis',
  'subscriber',
  'url',
  'redisOptions',
  'prefix',
  'instanceId',
  'forwardTimeout',
  'retryInterval',
  'leaseTtl',
  'deadlineGrace',
  'commandTimeout',
  'connectTimeout',
  'maxTtl',
  'codec',
  'clock',
]);
/** Former options, now the controller's: rejected with a message of their own rather than as unknown. */
const MOVED_KEYS = ['rollbackTag', 'rollbackTtl', 'duplicateWindow'];

const INSTANCE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const randomInstanceId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 12);
const OUTCOMES = new Set<string>(['delivered', 'duplicate', 'overwritten', 'rolled-back', 'unmatched']);

/** Answers this instance gave one sender, by sequence number: pending, an {@link ANSWERS} index, or an `error:` string. */
type AnswerLog = Map<number, Promise<string> | number | string>;
/** Acknowledgement payloads that are kept as their index. */
const ANSWERS = ['delivered', 'duplicate', 'overwritten', 'rolled-back', 'unmatched', GONE] as const;
const ANSWER_CODES = new Map<string, number>(ANSWERS.map((answer, i) => [answer, i]));

/**
 * A forward waiting for its acknowledgement, or a pause between sends: it
 * settles with the answer, with {@link RETRY} once `retryInterval` has
 * passed, or with {@link GONE} when the backplane closes.
 */
class Wait implements DeadlineTarget {
  constructor(
    readonly deadline: number,
    readonly settle: (attempt: Attempt) => void,
  ) {}

  onDeadline(): void {
    this.settle(RETRY);
  }
}

/** The messages for one channel in this event-loop turn. */
interface Outgoing {
  frames: string;
  /** Sequence numbers of the forwards among them. */
  readonly forwards: number[];
}

/** A per-ID script waiting for the turn's write, and the promise it settles. */
interface Queued {
  readonly name: 'rrxcRegister1' | 'rrxcEnd1';
  readonly args: (string | number)[];
  readonly resolve: (result: number) => void;
  readonly reject: (error: unknown) => void;
}

/** Most IDs in one call of the pending-set script: a longer call would hold Redis up (and overflow argument spreads). */
const MAX_BATCH = 1_000;

/** One event-loop turn of writes about this instance's generated IDs. */
interface OwnBatch {
  /** ms to the deadline (-1: none), ID; pairs, flattened. */
  readonly registered: (string | number)[];
  readonly answered: string[];
  readonly unanswered: string[];
}

/**
 * A {@link Backplane} on Redis: a reply that reaches any instance is
 * delivered by the instance that owns its exchange, exactly once, and the
 * receiving instance's `registerResponse` resolves with the owner's outcome.
 *
 * - Correlation IDs it generates start with the instance ID
 *   (`<instanceId>~<nanoid>`), so forwarding needs no lookup; for IDs the
 *   application chose, an ownership record in Redis names the owner.
 * - A reply is sent to its owner's pub/sub channel and acknowledged with the
 *   owner's outcome; unacknowledged sends are repeated, and the owner
 *   answers repeats from memory. Pub/sub may lose messages: a reply is never
 *   reported `delivered` without the owner's acknowledgement.
 * - Every instance holds a lease (heartbeat key) and keeps its pending
 *   generated IDs, with their deadlines, in one sorted set, written once per
 *   event-loop turn. When an owner stops answering and its lease lapsed or
 *   the deadline passed, a Lua script atomically marks the ID rolled back:
 *   late replies after a crash are `rolled-back`. An owner that could not
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
 * const backplane = await RedisBackplane.connect({ url: process.env.REDIS_URL, prefix: 'orders:' });
 * const controller = new Controller({ backplane, tagStore: backplane.tagStore, timeout: 5_000 });
 * // …
 * await controller.close(); // also closes the backplane and its connections
 * ```
 */
export class RedisBackplane implements Backplane {
  /** This instance's name, the head of every ID it generates. */
  readonly instanceId: string;
  readonly #redis: RedisConnection;
  readonly #subscriber: RedisConnection;
  readonly #owned: readonly RedisConnection[];
  readonly #scripts: Scripts;
  /** Runs the scripts of a turn's write (see `#flush`). */
  readonly #runScript: ScriptRunner;
  readonly #keys: Keys;
  readonly #channel: string;
  /** `<instanceId>~`: the head of the IDs this instance generates. */
  readonly #idHead: string;
  readonly #leaseKey: string;
  readonly #pendingKey: string;
  readonly #answeredKey: string;
  readonly #token = nanoid();
  readonly #clock: Clock;
  readonly #codec: RedisCodec;
  readonly #forwardTimeout: number;
  readonly #retryInterval: number;
  readonly #leaseTtl: number;
  readonly #grace: number;
  readonly #commandTimeout: number;
  readonly #connectTimeout: number;
  readonly #maxTtl: number;
  /**
   * Forwards waiting for their acknowledgement (by sequence number) and
   * pauses between sends, on one timer: every wait lasts `retryInterval`.
   */
  readonly #waits: TimerLane<Wait>;
  /** One timer for every command on the forwarding path. */
  readonly #deadlines: TimerLane<DeadlineTarget>;
  readonly #ready: Promise<void>;
  readonly #onMessage = (channel: string, raw: string): void => this.#receive(channel, raw);
  /** Back after an outage (a restarted Redis has lost the lease): renew at once, not at the next beat. */
  readonly #onReconnect = (): void => {
    if (this.#leaseHeld && this.#closed === undefined) void this.#renew();
  };
  #router: BackplaneRouter | undefined;
  /** From the router, once started: rollback TTL as written to Redis, duplicate window, and derived TTLs. */
  #rollbackTtl = 0;
  #duplicateWindow = 0;
  /** How long an application-chosen ID's record stays after its deadline: long enough to roll back a late reply. */
  #keep = 0;
  /** TTL of the pending set: after the last write (a crash), its IDs are rolled back for `rollbackTtl`. */
  #pendingTtl = 0;
  #tagStore: RedisTagStore | undefined;
  /**
   * Messages to publish at the end of this event-loop turn, by channel: a
   * new map every turn, which dies young (a long-lived one, cleared every
   * turn, would allocate its tables in old space, where they keep what they
   * held alive until the next full collection).
   */
  #outbox = new Map<string, Outgoing>();
  #batch: OwnBatch | undefined;
  /** Per-ID scripts of this turn (records of IDs the application chose), sent in the turn's write. */
  #queued: Queued[] = [];
  /** Batches of this turn that reached {@link MAX_BATCH} IDs: a script call each. */
  #fullBatches: OwnBatch[] = [];
  #flushing = false;
  #seq = 0;
  /** Answers to forwards received, by sender and sequence, in two generations: a repeat gets the same answer. */
  #answers = new Map<string, AnswerLog>();
  #oldAnswers = new Map<string, AnswerLog>();
  #answersSince: number;
  /** Number of background writes in flight, awaited (bounded) by `close()`, which waits for `#written` to be called. */
  #writes = 0;
  #written: (() => void) | undefined;
  #heartbeat: unknown;
  #fenceTimer: unknown;
  #leaseHeld = false;
  /** Until when (this instance's clock) the lease surely lives in Redis; after it, this instance is fenced. */
  #leaseUntil = 0;
  #fenced = false;
  /** Why it was fenced: the reason every exchange it ends while fenced gets. */
  #fenceReason: BackplaneError | undefined;
  #abandoning = false;
  #failing = false;
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
    if (typeof options === 'object' && options !== null) {
      for (const moved of MOVED_KEYS) {
        if (moved in options) throw new InvalidArgumentError(`${moved} is no longer a RedisBackplane option: the backplane uses the controller's`);
      }
    }
    const given = checkOptionsObject(options, 'RedisBackplane options', BACKPLANE_KEYS);
    checkConnectionOptions('RedisBackplane', given.redis, given.url);
    if (given.subscriber !== undefined && given.redis === undefined) {
      throw new InvalidArgumentError('subscriber is only accepted together with redis');
    }
    const instanceId = given.instanceId ?? randomInstanceId();
    if (typeof instanceId !== 'string' || !INSTANCE_ID.test(instanceId)) {
      throw new InvalidArgumentError(`instanceId must be 1 to 64 letters, digits, \`_\` or \`-\`, got ${describe(instanceId)}`);
    }
    this.instanceId = instanceId;
    this.#idHead = `${instanceId}~`;
    this.#keys = new Keys(checkPrefix(given.prefix ?? DEFAULT_PREFIX));
    this.#channel = this.#keys.channel(instanceId);
    this.#leaseKey = this.#keys.lease(instanceId);
    this.#pendingKey = this.#keys.pending(instanceId);
    this.#answeredKey = this.#keys.answered(instanceId);
    this.#clock = checkClock(given.clock);
    this.#codec = checkMethods('codec', given.codec, ['encode', 'decode']) ?? JSON_CODEC;
    this.#forwardTimeout = checkDuration('forwardTimeout', given.forwardTimeout ?? DEFAULT_FORWARD_TIMEOUT);
    this.#retryInterval = checkDuration('retryInterval', given.retryInterval ?? DEFAULT_RETRY_INTERVAL);
    this.#leaseTtl = checkDuration('leaseTtl', given.leaseTtl ?? DEFAULT_LEASE_TTL);
    this.#grace = checkDuration('deadlineGrace', given.deadlineGrace ?? DEFAULT_DEADLINE_GRACE, true);
    this.#commandTimeout = checkDuration('commandTimeout', given.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT);
    this.#connectTimeout = checkDuration('connectTimeout', given.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT);
    this.#maxTtl = checkRedisTtl('maxTtl', given.maxTtl ?? DEFAULT_MAX_TTL);
    this.#waits = new TimerLane(this.#retryInterval, this.#clock);
    this.#deadlines = new TimerLane(this.#commandTimeout, this.#clock);

    const owned: RedisConnection[] = [];
    if (given.url !== undefined) {
      this.#redis = connectUrl(given.url, given.redisOptions);
      this.#subscriber = connectUrl(given.url, given.redisOptions);
      owned.push(this.#redis, this.#subscriber);
    } else {
      this.#redis = given.redis!;
      this.#subscriber = given.subscriber ?? this.#redis.duplicate();
      if (given.subscriber === undefined) owned.push(this.#subscriber);
    }
    this.#owned = owned;
    for (const connection of owned) connection.on('error', this.#onConnectionError);
    this.#scripts = defineScripts(this.#redis);
    this.#runScript = scriptRunner(this.#redis);
    this.#answersSince = this.#clock.now();
    this.#subscriber.on('message', this.#onMessage);
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
    return (this.#tagStore ??= new RedisTagStore({ redis: this.#redis, prefix: this.#keys.prefix, maxTtl: this.#maxTtl, clock: this.#clock }));
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
    this.#rollbackTtl = clampTtl(router.rollbackTtl, this.#maxTtl);
    this.#duplicateWindow = Math.min(Math.ceil(router.duplicateWindow), this.#maxTtl);
    this.#keep = this.#grace + this.#rollbackTtl;
    this.#pendingTtl = Math.min(this.#maxTtl, this.#rollbackTtl + this.#grace + this.#leaseTtl);
  }

  /**
   * `<instanceId>~`: the controller puts it before every ID it generates,
   * so that any instance can tell this one owns it.
   */
  get idPrefix(): string {
    return this.#idHead;
  }

  /**
   * Records that this instance owns `correlationId`: a generated ID joins
   * this turn's batch for the pending set; an ID the application chose gets
   * an ownership record (sent with the turn's write). Failures go to `rrxc:redis:error`.
   * While fenced, the exchange is ended at once (see `leaseTtl`).
   */
  requestRegistered(correlationId: string, deadline: number | undefined): void {
    if (this.#fenced) this.#abandonSoon();
    const remaining = deadline === undefined ? -1 : Math.max(0, Math.ceil(deadline - this.#clock.now()));
    if (correlationId.startsWith(this.#idHead)) {
      this.#own().registered.push(remaining, correlationId);
      return;
    }
    this.#background('register', [correlationId], () =>
      this.#queue('rrxcRegister1', [this.#keys.record(correlationId), this.instanceId, remaining, this.#keep, this.#maxTtl]),
    );
  }

  /**
   * Ends what Redis holds about an ended exchange's IDs: answered IDs are
   * kept for the duplicate window; an unanswered ID the application chose
   * becomes a rollback tag in the same atomic step as its record goes.
   */
  requestsEnded(answered: readonly string[], unanswered: readonly string[]): void {
    for (const id of answered) {
      if (id.startsWith(this.#idHead)) this.#own().answered.push(id);
      else this.#end(id, '1');
    }
    for (const id of unanswered) {
      if (id.startsWith(this.#idHead)) this.#own().unanswered.push(id);
      else this.#end(id, '0');
    }
  }

  /**
   * Delivers a reply at the instance that owns it and answers that
   * instance's outcome.
   *
   * @returns `delivered`, `duplicate`, `overwritten`, `rolled-back` or `unmatched`.
   * @throws {@link BackplaneError} (as a rejection) when the owner cannot be reached and may still deliver, when Redis fails, or after `close()`.
   */
  async forward(correlationId: string, message: unknown, overwrite: boolean): Promise<ResponseOutcome> {
    if (this.#closed !== undefined) throw closedError();
    let payload: string;
    try {
      payload = this.#codec.encode(message);
    } catch (error) {
      throw new BackplaneError('codec', `cannot encode the reply to \`${correlationId}\` for forwarding`, error);
    }
    if (typeof payload !== 'string') throw new BackplaneError('codec', `codec.encode() must return a string, got ${typeof payload}`);

    const derived = ownerOf(correlationId);
    if (derived !== undefined) {
      if (derived !== this.instanceId) {
        const outcome = await this.#request(derived, correlationId, payload, overwrite);
        if (outcome !== undefined) return outcome;
      }
      // The owner did not answer (or it is this instance, which no longer holds the ID): its sets decide.
      const outcome = await this.#settleOwned(derived, correlationId);
      if (outcome !== undefined) return outcome;
    }
    // An ID the application chose (or one the owner has no record of): the ownership record decides.
    const record = parseRecord(await this.#command('GET', () => this.#redis.get(this.#keys.record(correlationId))));
    if (record !== undefined && record.owner !== derived && record.owner !== this.instanceId) {
      const outcome = await this.#request(record.owner, correlationId, payload, overwrite);
      if (outcome !== undefined) return outcome;
    }
    return this.#settle(correlationId, record);
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
    this.#clock.clearTimeout(this.#heartbeat);
    this.#clock.clearTimeout(this.#fenceTimer);
    // Forwards waiting (or pausing between sends) go on now, and find the backplane closed.
    for (const wait of this.#waits.clear()) wait.settle(GONE);
    // The controller ended every exchange before closing us: write the last batch now.
    this.#flush();
    if (this.#writes > 0) {
      const written = new Promise<void>((resolve) => (this.#written = resolve));
      await withTimeout(written, this.#commandTimeout, 'background writes', this.#clock).catch(() => undefined);
    }
    this.#subscriber.off('message', this.#onMessage);
    this.#redis.off('ready', this.#onReconnect);
    if (!this.#owned.includes(this.#subscriber)) await this.#quietly(() => this.#subscriber.unsubscribe(this.#channel));
    if (this.#leaseHeld) await this.#quietly(() => this.#redis.del(this.#leaseKey));
    // Their error listener stays: a closed ioredis client may still emit one last error.
    await Promise.all(this.#owned.map((connection) => release(connection, this.#commandTimeout, this.#clock)));
    // Every command has settled or been given up on: no deadline of ours may outlive close().
    this.#deadlines.clear();
  }

  async #start(): Promise<void> {
    try {
      await withTimeout(
        (async () => {
          await Promise.all([whenReady(this.#redis, this.#connectTimeout, this.#clock), whenReady(this.#subscriber, this.#connectTimeout, this.#clock)]);
          await this.#subscriber.subscribe(this.#channel);
          await this.#beat();
        })(),
        this.#connectTimeout,
        `not ready within connectTimeout (${this.#connectTimeout} ms)`,
        this.#clock,
      );
    } catch (error) {
      if (this.#closed === undefined) this.#scheduleBeat();
      throw new BackplaneError('transport', `cannot start the Redis backplane: ${describeCause(error)}`, error);
    }
    if (this.#closed !== undefined) throw closedError();
    this.#scheduleBeat();
  }

  /**
   * Renews the lease and trims this instance's sets. The lease surely lives
   * until `leaseTtl` after the renewal was *sent*, so that is when the fence
   * is set. A renewal that finds the lease gone (expired, or lost with a
   * restarted Redis) means other instances may have rolled back our
   * pending IDs meanwhile: fence at once.
   */
  async #beat(): Promise<void> {
    const sentAt = this.#clock.now();
    const found = await withTimeout(
      this.#scripts.beat(
        this.#leaseKey,
        this.#pendingKey,
        this.#answeredKey,
        this.#token,
        this.#leaseTtl,
        this.#pendingTtl,
        this.#duplicateWindow,
        this.#keep,
        this.#rollbackTtl,
      ),
      this.#commandTimeout,
      'heartbeat timed out',
      this.#clock,
    );
    if (this.#closed !== undefined) return;
    if (this.#leaseHeld && found !== this.#token) {
      this.#fence(`the lease of instance \`${this.instanceId}\` lapsed (found ${found === null ? 'nothing' : 'another token'} when renewing it)`);
      if (leaseLostChannel.hasSubscribers) leaseLostChannel.publish({ instanceId: this.instanceId, found } satisfies RedisLeaseLostMessage);
    }
    this.#leaseHeld = true;
    this.#fenced = false;
    // A margin for clocks that drift apart over one lease.
    this.#leaseUntil = sentAt + this.#leaseTtl - Math.ceil(this.#leaseTtl / 10);
    this.#clock.clearTimeout(this.#fenceTimer);
    const timer = this.#clock.setTimeout(this.#onFenceTimer, Math.max(1, this.#leaseUntil - this.#clock.now()));
    (timer as { unref?: () => void } | undefined)?.unref?.();
    this.#fenceTimer = timer;
  }

  readonly #onFenceTimer = (): void => {
    if (this.#closed !== undefined || this.#fenced) return;
    const left = this.#leaseUntil - this.#clock.now();
    if (left > 0) {
      // Timers may fire a little before the wall clock says: wait for the rest.
      const timer = this.#clock.setTimeout(this.#onFenceTimer, left);
      (timer as { unref?: () => void } | undefined)?.unref?.();
      this.#fenceTimer = timer;
      return;
    }
    this.#fence(`instance \`${this.instanceId}\` could not renew its lease within leaseTtl (${this.#leaseTtl} ms)`);
  };

  /**
   * Whether this instance may deliver a reply: not while fenced, nor once
   * its lease may have lapsed in Redis (other instances may then roll its
   * IDs back). Answering `false`, it first ends every open exchange of the
   * controller, so the reply is routed as a late one.
   */
  checkLease(): boolean {
    if (this.#fenced) {
      // Ends an exchange registered since the fence whose end is still queued (#abandonSoon).
      this.#router?.abandon(this.#fenceReason!);
      return false;
    }
    if (!(this.#leaseHeld && this.#clock.now() >= this.#leaseUntil)) return true;
    this.#fence(`instance \`${this.instanceId}\` could not renew its lease within leaseTtl (${this.#leaseTtl} ms)`);
    return false;
  }

  /**
   * Fences this instance: ends every open exchange. The reason is made when
   * the fence goes up; while it stays up, exchanges are ended with it.
   */
  #fence(why: string): void {
    if (!this.#fenced) {
      this.#fenced = true;
      this.#fenceReason = new BackplaneError('transport', `lease lost: ${why}; its open exchanges were ended so that it never delivers a reply other instances rolled back`);
    }
    this.#router?.abandon(this.#fenceReason!);
  }

  /** A request registered while fenced: ends its exchange, right after the registration returns. */
  #abandonSoon(): void {
    if (this.#abandoning) return;
    this.#abandoning = true;
    queueMicrotask(() => {
      this.#abandoning = false;
      if (this.#fenced) this.#router?.abandon(this.#fenceReason!);
    });
  }

  /** One heartbeat whose failure is reported, not thrown: the promise never rejects. */
  #renew(): Promise<void> {
    return this.#beat().then(
      () => {
        this.#failing = false;
      },
      (error: unknown) => this.#report('heartbeat', [], error),
    );
  }

  #scheduleBeat(): void {
    const timer = this.#clock.setTimeout(() => {
      void this.#renew().finally(() => {
        if (this.#closed === undefined) this.#scheduleBeat();
      });
    }, Math.max(1, Math.floor(this.#leaseTtl / 3)));
    // The heartbeat alone must not keep the process alive.
    (timer as { unref?: () => void } | undefined)?.unref?.();
    this.#heartbeat = timer;
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
  async #request(owner: string, id: string, payload: string, overwrite: boolean): Promise<ResponseOutcome | undefined> {
    const seq = ++this.#seq;
    const message = `${FORWARD}\n${this.instanceId}\n${seq}\n${overwrite ? 1 : 0}\n${id.length}\n${id}${payload}`;
    const channel = this.#keys.channel(owner);
    const giveUpAt = this.#clock.now() + this.#forwardTimeout;
    try {
      for (;;) {
        if (this.#closed !== undefined) throw closedError();
        const got = await this.#attempt(seq, channel, message);
        if (got === RETRY) {
          if (this.#clock.now() >= giveUpAt) return undefined;
          continue;
        }
        if (got === NOBODY) {
          // Nobody listens: dead, closed, or reconnecting. Only the last is worth waiting for.
          if ((await this.#command('EXISTS', () => this.#redis.exists(this.#keys.lease(owner)))) === 0) return undefined;
          if (this.#clock.now() >= giveUpAt) return undefined;
          await new Promise<Attempt>((resolve) => this.#waits.add(new Wait(this.#clock.now() + this.#retryInterval, resolve)));
          continue;
        }
        if (typeof got !== 'string') throw transportError('PUBLISH', got.error);
        if (OUTCOMES.has(got)) return got as ResponseOutcome;
        if (got === GONE) {
          if (this.#closed !== undefined) throw closedError();
          return undefined;
        }
        throw new BackplaneError(got.startsWith(`${ERROR}codec`) ? 'codec' : 'owner-failed', `instance \`${owner}\` could not route the reply to \`${id}\`: ${got.slice(ERROR.length)}`);
      }
    } finally {
      this.#waits.take(seq);
    }
  }

  /** One send: settles with the owner's answer, {@link NOBODY}, {@link RETRY} after `retryInterval`, or the PUBLISH failure. */
  #attempt(seq: number, channel: string, message: string): Promise<Attempt> {
    return new Promise((resolve) => {
      this.#waits.add(new Wait(this.#clock.now() + this.#retryInterval, resolve), seq);
      this.#send(channel, message, seq);
    });
  }

  /** Settles the wait of forward `seq`, if it still waits. */
  #answer(seq: number, answer: Attempt): void {
    this.#waits.take(seq)?.settle(answer);
  }

  /**
   * A generated ID whose owner did not answer: its pending and answered sets
   * decide, atomically with its lease; `undefined` when the owner has no
   * record of the ID.
   */
  async #settleOwned(owner: string, id: string): Promise<ResponseOutcome | undefined> {
    const outcome = await this.#command('settle', () =>
      this.#scripts.settleOwned(
        this.#keys.lease(owner),
        this.#keys.pending(owner),
        this.#keys.answered(owner),
        id,
        this.#grace,
        this.#duplicateWindow,
        owner === this.instanceId ? '1' : '0',
      ),
    );
    if (outcome === 'none') return undefined;
    if (outcome === 'pending') throw unreachable(owner, id, this.#forwardTimeout);
    if (outcome === 'rolled-back') {
      // The decision is already in the owner's set; the tag is for isRolledBack() and later copies.
      const tag = this.#router?.rollbackTag;
      if (tag !== undefined) await this.#command('tag', () => this.#scripts.tag(this.#keys.tags(id), tag, this.#rollbackTtl));
    }
    return outcome as ResponseOutcome;
  }

  /** The owner did not answer: the ownership record and the tags in Redis decide, atomically. */
  async #settle(id: string, record: OwnershipRecord | undefined): Promise<ResponseOutcome> {
    let owner = '';
    let alive: '1' | '0' = '1';
    if (record?.state === 'p') {
      owner = record.owner;
      // Our own record for an ID our controller no longer holds: nobody will deliver it.
      if (owner === this.instanceId) alive = '0';
      else if ((await this.#command('EXISTS', () => this.#redis.exists(this.#keys.lease(owner)))) === 0) alive = '0';
    }
    const tag = this.#router?.rollbackTag ?? '';
    const outcome = await this.#command('settle', () =>
      this.#scripts.settle(this.#keys.record(id), this.#keys.tags(id), owner, alive, this.#grace, tag, this.#rollbackTtl),
    );
    if (outcome === 'pending') throw unreachable(owner, id, this.#forwardTimeout);
    return outcome as ResponseOutcome;
  }

  /** A message on this instance's channel: a reply forwarded here, or an acknowledgement of one of ours. */
  #receive(channel: string, batch: string): void {
    if (channel !== this.#channel) return;
    // A batch of frames, each `<length>:<message>`.
    for (let at = 0; at < batch.length; ) {
      const colon = batch.indexOf(':', at);
      if (colon === -1) return;
      const end = colon + 1 + Number(batch.slice(at, colon));
      this.#receiveOne(batch.slice(colon + 1, end));
      at = end;
    }
  }

  #receiveOne(raw: string): void {
    if (raw.startsWith(ACK)) {
      const end = raw.indexOf('\n', 2);
      this.#answer(Number(raw.slice(2, end)), raw.slice(end + 1));
      return;
    }
    if (!raw.startsWith(FORWARD)) return;
    let at = 2;
    const field = (): string => {
      const end = raw.indexOf('\n', at);
      const value = raw.slice(at, end);
      at = end + 1;
      return value;
    };
    const from = field();
    const seq = field();
    const overwrite = field() === '1';
    const length = Number(field());
    const id = raw.slice(at, at + length);
    const payload = raw.slice(at + length);

    // A lost acknowledgement is repeated when the sender resends: a repeat gets the first answer.
    const n = Number(seq);
    const log = this.#log(from);
    const known = log.get(n) ?? this.#oldAnswers.get(from)?.get(n);
    if (known === undefined) {
      const answer = this.#deliver(id, payload, overwrite);
      log.set(n, answer);
      answer.then(
        (outcome) => {
          // Settled answers are kept as small integers: nothing for the garbage collector to trace.
          log.set(n, ANSWER_CODES.get(outcome) ?? outcome);
          this.#send(this.#keys.channel(from), `${ACK}\n${seq}\n${outcome}`);
        },
        (error: unknown) => {
          const failed = `${ERROR}${describeCause(error)}`;
          log.set(n, failed);
          this.#send(this.#keys.channel(from), `${ACK}\n${seq}\n${failed}`);
        },
      );
    } else if (typeof known === 'object') {
      void known.then(
        (outcome) => this.#send(this.#keys.channel(from), `${ACK}\n${seq}\n${outcome}`),
        (error: unknown) => this.#send(this.#keys.channel(from), `${ACK}\n${seq}\n${ERROR}${describeCause(error)}`),
      );
    } else {
      this.#send(this.#keys.channel(from), `${ACK}\n${seq}\n${typeof known === 'number' ? ANSWERS[known] : known}`);
    }
  }

  /**
   * Publishes `message` on `channel` together with every other message for
   * that channel in this event-loop turn: one PUBLISH (and one message to
   * parse on the other side) per turn and instance rather than per reply.
   * The forwards among them (`seq`) learn when nobody received the message,
   * or when PUBLISH failed.
   */
  #send(channel: string, message: string, seq?: number): void {
    let batch = this.#outbox.get(channel);
    if (batch === undefined) {
      batch = { frames: '', forwards: [] };
      this.#outbox.set(channel, batch);
      this.#scheduleFlush();
    }
    batch.frames += `${message.length}:${message}`;
    if (seq !== undefined) batch.forwards.push(seq);
  }

  /** What became of one PUBLISH, told to the forwards it carried. */
  #published(batch: Outgoing, receivers: number | undefined, error?: unknown): void {
    if (batch.forwards.length === 0 || (error === undefined && receivers !== 0)) return;
    const answer: Attempt = error === undefined ? NOBODY : { error };
    for (const seq of batch.forwards) this.#answer(seq, answer);
  }

  #scheduleFlush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    setImmediate(this.#flush);
  }

  /**
   * Writes this turn's messages and its batch for the generated IDs, each
   * command bounded by `commandTimeout`. On a single node they go out in one
   * write, sent now (through ioredis' auto-pipelining each would wait one
   * more event-loop turn), as plain commands on a corked socket rather than
   * in an ioredis `Pipeline`: a pipeline per turn, with all it reaches,
   * would outlive every scavenge (see {@link corked}). On a Cluster their
   * keys are in different slots: one command each, which the Cluster routes.
   */
  readonly #flush = (): void => {
    this.#flushing = false;
    const batches = this.#fullBatches;
    if (this.#batch !== undefined) batches.push(this.#batch);
    this.#batch = undefined;
    this.#fullBatches = [];
    const queued = this.#queued;
    this.#queued = [];
    const outbox = this.#outbox;
    if (batches.length === 0 && outbox.size === 0 && queued.length === 0) return;
    this.#outbox = new Map();
    corked(this.#redis, () => {
      for (const [channel, outgoing] of outbox) {
        this.#bounded(this.#publish(channel, outgoing.frames)).then(
          (receivers) => this.#published(outgoing, receivers),
          (error: unknown) => this.#published(outgoing, undefined, error),
        );
      }
      for (const batch of batches) this.#writeOwn(batch);
      for (const { name, args, resolve, reject } of queued) this.#bounded(this.#runScript(name, args) as Promise<number>).then(resolve, reject);
    });
  };

  /** PUBLISH: a plain command on a single node, so that it joins the corked write; on a Cluster, through the Cluster. */
  #publish(channel: string, message: string): Promise<number> {
    if (this.#redis.isCluster) return this.#redis.publish(channel, message);
    return (this.#redis as Redis).sendCommand(new Command('publish', [channel, message])) as Promise<number>;
  }

  #deliver(id: string, payload: string, overwrite: boolean): Promise<string> {
    // Errors (the owner's own routing failed) become `error:` acknowledgements in #receiveOne.
    const router = this.#router;
    if (router === undefined || this.#closed !== undefined) return Promise.resolve(GONE);
    // Fenced (or about to be: the lease may have lapsed in Redis): another
    // instance may roll this ID back, so this one must not deliver it.
    if (!this.checkLease()) return Promise.resolve(GONE);
    let message: unknown;
    try {
      message = this.#codec.decode(payload);
    } catch (error) {
      this.#report('decode', [id], error);
      return Promise.resolve(`${ERROR}codec: ${describeCause(error)}`);
    }
    return router.route(id, message, overwrite);
  }

  /**
   * The answers to `from`'s forwards, by sequence number, in the current
   * generation. Two generations, each at least as long as a sender resends
   * (forwardTimeout plus one interval), so an answer is kept that long at least.
   */
  #log(from: string): AnswerLog {
    const now = this.#clock.now();
    if (now - this.#answersSince > this.#forwardTimeout + this.#retryInterval) {
      this.#oldAnswers = this.#answers;
      this.#answers = new Map();
      this.#answersSince = now;
    }
    let log = this.#answers.get(from);
    if (log === undefined) this.#answers.set(from, (log = new Map()));
    return log;
  }

  /** This turn's batch for the generated IDs, written in one script call (per {@link MAX_BATCH} IDs) when the turn ends. */
  #own(): OwnBatch {
    let batch = this.#batch;
    if (batch !== undefined && batch.registered.length / 2 + batch.answered.length + batch.unanswered.length >= MAX_BATCH) {
      this.#fullBatches.push(batch);
      batch = undefined;
    }
    if (batch === undefined) {
      batch = this.#batch = { registered: [], answered: [], unanswered: [] };
      this.#scheduleFlush();
    }
    return batch;
  }

  /** Queues a per-ID script for this turn's write; resolves with its result. */
  #queue(name: 'rrxcRegister1' | 'rrxcEnd1', args: (string | number)[]): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#queued.push({ name, args, resolve, reject });
      this.#scheduleFlush();
    });
  }

  /** Writes a batch for the generated IDs; conflicts go to `rrxc:redis:conflict`, failures to `rrxc:redis:error`. */
  #writeOwn(batch: OwnBatch): void {
    const { registered, answered, unanswered } = batch;
    const args: (string | number)[] = [this.#pendingKey, this.#answeredKey, this.#pendingTtl, this.#duplicateWindow, this.#maxTtl, registered.length / 2];
    for (const item of registered) args.push(item);
    args.push(answered.length);
    for (const id of answered) args.push(id);
    args.push(unanswered.length);
    for (const id of unanswered) args.push(id);
    const ids = (): string[] => [...registered.filter((_, i) => i % 2 === 1).map(String), ...answered, ...unanswered];
    this.#background('own', ids, async () => {
      const conflicts = (await this.#bounded(this.#runScript('rrxcOwn1', args))) as string[];
      if (conflictChannel.hasSubscribers) {
        for (const correlationId of conflicts) conflictChannel.publish({ instanceId: this.instanceId, correlationId } satisfies RedisConflictMessage);
      }
    });
  }

  #end(id: string, answered: '1' | '0'): void {
    const tag = this.#router?.rollbackTag ?? '';
    this.#background('end', [id], async () => {
      const result = await this.#queue('rrxcEnd1', [this.#keys.record(id), this.#keys.tags(id), this.instanceId, answered, this.#duplicateWindow, tag, this.#rollbackTtl]);
      if (result === 2 && conflictChannel.hasSubscribers) {
        conflictChannel.publish({ instanceId: this.instanceId, correlationId: id } satisfies RedisConflictMessage);
      }
    });
  }

  /** A write nobody awaits: tracked for `close()`, failures reported. Never throws. */
  #background(operation: string, ids: readonly string[] | (() => readonly string[]), write: () => Promise<unknown>): void {
    let written: Promise<unknown>;
    try {
      written = write();
    } catch (error) {
      written = Promise.reject(error);
    }
    const tracked = written.then(
      () => (this.#failing = false),
      (error: unknown) => this.#report(operation, typeof ids === 'function' ? ids() : ids, error),
    );
    this.#writes++;
    void tracked.finally(() => {
      if (--this.#writes === 0) this.#written?.();
    });
  }

  /**
   * Bounds a command on the forwarding path by `commandTimeout`, on the
   * shared deadline lane: the timeout's error is only built when it fires.
   */
  #bounded<T>(command: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const handle = this.#deadlines.add({ deadline: this.#clock.now() + this.#commandTimeout, onDeadline: () => reject(new Error(`no answer within commandTimeout (${this.#commandTimeout} ms)`)) });
      command.then(
        (value) => {
          this.#deadlines.cancel(handle);
          resolve(value);
        },
        (error: unknown) => {
          this.#deadlines.cancel(handle);
          reject(error);
        },
      );
    });
  }

  /** One Redis command on the forwarding path: bounded, failures as {@link BackplaneError}. */
  async #command<T>(name: string, call: () => Promise<T>): Promise<T> {
    try {
      return await this.#bounded(call());
    } catch (error) {
      throw transportError(name, error);
    }
  }

  async #quietly(call: () => Promise<unknown>): Promise<void> {
    try {
      await withTimeout(call(), this.#commandTimeout, 'timed out', this.#clock);
    } catch {
      // Closing: the connection may already be gone, and the keys expire anyway.
    }
  }

  readonly #onConnectionError = (error: unknown): void => this.#report('connection', [], error);

  #report(operation: string, correlationIds: readonly string[], error: unknown): void {
    const wrapped = error instanceof BackplaneError ? error : transportError(operation, error);
    if (errorChannel.hasSubscribers) {
      errorChannel.publish({ instanceId: this.instanceId, operation, correlationIds, error: wrapped } satisfies RedisErrorMessage);
    } else if (!this.#failing && operation !== 'connection') {
      // Once per outage: a dead Redis fails every registration and every
      // heartbeat. Connection errors themselves already reach callers as
      // failed commands or a failed ready().
      this.#failing = true;
      process.emitWarning(wrapped);
    }
  }
}

interface OwnershipRecord {
  readonly state: 'p' | 'a';
  readonly owner: string;
}

function parseRecord(raw: string | null): OwnershipRecord | undefined {
  if (raw === null) return undefined;
  const end = raw.indexOf('|', 2);
  const state = raw[0];
  if (state !== 'p' && state !== 'a') return undefined;
  return { state, owner: end === -1 ? raw.slice(2) : raw.slice(2, end) };
}

/** The instance named at the head of an ID this backplane (on any instance) generated. */
function ownerOf(id: string): string | undefined {
  const end = id.indexOf('~');
  if (end <= 0 || end > 64) return undefined;
  const owner = id.slice(0, end);
  return INSTANCE_ID.test(owner) ? owner : undefined;
}

/** A Redis command (or `operation`, a step of several) that failed or timed out. */
function transportError(operation: string, error: unknown): BackplaneError {
  return new BackplaneError('transport', `Redis ${operation} failed: ${describeCause(error)}`, error);
}

function unreachable(owner: string, id: string, forwardTimeout: number): BackplaneError {
  return new BackplaneError(
    'owner-unreachable',
    `instance \`${owner}\` owns \`${id}\` but did not answer within forwardTimeout (${forwardTimeout} ms); it is alive and the request's deadline has not passed, so the reply may still be delivered there`,
  );
}

function closedError(): BackplaneError {
  return new BackplaneError('closed', 'the Redis backplane is closed');
}
