import { customAlphabet, nanoid } from 'nanoid';
import type { RedisOptions } from 'ioredis';
import type { Backplane, BackplaneRouter } from '../backplane.js';
import { systemClock, type Clock } from '../clock.js';
import { InvalidArgumentError } from '../errors.js';
import { DEFAULT_DUPLICATE_WINDOW, DEFAULT_ROLLBACK_TAG, DEFAULT_ROLLBACK_TTL } from '../options.js';
import type { ResponseOutcome } from '../types.js';
import { conflictChannel, errorChannel, leaseLostChannel, type RedisConflictMessage, type RedisErrorMessage, type RedisLeaseLostMessage } from './channels.js';
import { checkConnectionOptions, connectUrl, release, whenReady, within } from './_connection.js';
import { checkMs, checkPrefix, clampTtl, DEFAULT_PREFIX, Keys } from './_keys.js';
import { defineScripts, type RedisConnection, type Scripts } from './_scripts.js';
import { BackplaneError } from './errors.js';
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
 * Options of {@link RedisBackplane}. Give exactly one of `redis` and `url`.
 * Every instance of a service must use the same `prefix`, `rollbackTag`,
 * `rollbackTtl` and `duplicateWindow` — the last three as in its controller.
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
   * resending every `retryInterval`. After that the ownership record in
   * Redis decides: `rolled-back` if the owner is dead or the deadline
   * passed, else a {@link BackplaneError} (`owner-unreachable`).
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
   * instance's pending IDs when a reply for one reaches them.
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
   * The controller's `rollbackTag`.
   * @defaultValue `"rollback"`
   */
  rollbackTag?: string;
  /**
   * The controller's `rollbackTtl`; `0` is stored as `maxTtl`.
   * @defaultValue 10 800 000 (3 h)
   */
  rollbackTtl?: number;
  /**
   * The controller's `duplicateWindow`: how long an answered ID's record
   * stays, so that a late copy reaching an instance whose owner is gone is
   * still `duplicate`.
   * @defaultValue 60 000
   */
  duplicateWindow?: number;
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
   * @defaultValue {@link systemClock}
   */
  clock?: Clock;
}

/** A forwarded reply, or an acknowledgement, as sent over pub/sub. */
const FORWARD = 'f';
const ACK = 'a';
/** Acknowledgement payloads beyond the outcomes. */
const GONE = 'gone';
const ERROR = 'error:';
/** What an attempt settles with besides an answer. */
const RETRY = Symbol('retry');
const NOBODY = Symbol('nobody listens');
type Attempt = string | typeof RETRY | typeof NOBODY | { readonly error: unknown };

const INSTANCE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const randomInstanceId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 12);
const OUTCOMES = new Set<string>(['delivered', 'duplicate', 'overwritten', 'rolled-back', 'unmatched']);

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
 * - Every request has an ownership record with its deadline, and every
 *   instance a lease (heartbeat key). When an owner stops answering and its
 *   lease lapsed or the deadline passed, a Lua script atomically turns the
 *   record into a rollback tag: late replies after a crash are `rolled-back`,
 *   and the owner, should it come back, sees the conflict.
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
  readonly #keys: Keys;
  readonly #channel: string;
  readonly #token = nanoid();
  readonly #clock: Clock;
  readonly #codec: RedisCodec;
  readonly #forwardTimeout: number;
  readonly #retryInterval: number;
  readonly #leaseTtl: number;
  readonly #grace: number;
  readonly #commandTimeout: number;
  readonly #connectTimeout: number;
  readonly #rollbackTag: string;
  readonly #rollbackTtl: number;
  readonly #duplicateTtl: number;
  readonly #maxTtl: number;
  /** How long a record stays after its deadline: long enough to roll back a late reply. */
  readonly #keep: number;
  readonly #ready: Promise<void>;
  readonly #onMessage = (channel: string, raw: string): void => this.#receive(channel, raw);
  /** Back after an outage (a restarted Redis has lost the lease): renew at once, not at the next beat. */
  readonly #onReconnect = (): void => {
    if (this.#leaseHeld && this.#closed === undefined) this.#beat().catch((error: unknown) => this.#report('heartbeat', [], error));
  };
  #router: BackplaneRouter | undefined;
  #tagStore: RedisTagStore | undefined;
  /** Forwards waiting for their acknowledgement, by sequence number. */
  readonly #waiting = new Map<number, (answer: Attempt) => void>();
  /** Messages to publish at the end of this event-loop turn, by channel. */
  readonly #outbox = new Map<string, { frames: string; readonly sent: Promise<number>; readonly flush: (receivers: Promise<number>) => void }>();
  #seq = 0;
  /** Answers to forwards received, by sender and sequence, in two generations: a repeat gets the same answer. */
  #answers = new Map<string, Promise<string>>();
  #oldAnswers = new Map<string, Promise<string>>();
  #answersSince: number;
  /** Background writes in flight, awaited (bounded) by `close()`. */
  readonly #writes = new Set<Promise<unknown>>();
  #heartbeat: unknown;
  #leaseHeld = false;
  #failing = false;
  #closed: Promise<void> | undefined;

  /**
   * Makes a backplane and waits until it is subscribed and its lease is
   * written, so that a wrong URL or a Redis that is down fails here rather
   * than on the first forwarded reply.
   *
   * @param options - See {@link RedisBackplaneOptions}.
   * @returns A backplane ready to be given to a `Controller`.
   * @throws {@link BackplaneError} (as a rejection; `redis`) when Redis does not answer within `connectTimeout`; the backplane is closed again.
   * @throws `InvalidArgumentError` (from `rrxc`) for bad options.
   */
  static async connect(options: RedisBackplaneOptions): Promise<RedisBackplane> {
    const backplane = new RedisBackplane(options);
    try {
      await backplane.ready();
    } catch (error) {
      await backplane.close();
      throw error;
    }
    return backplane;
  }

  /**
   * Makes a backplane and starts connecting, subscribing and heartbeating
   * without waiting; {@link RedisBackplane.connect} is the variant that waits.
   *
   * @param options - See {@link RedisBackplaneOptions}.
   * @throws `InvalidArgumentError` (from `rrxc`) for bad options.
   */
  constructor(options: RedisBackplaneOptions) {
    checkConnectionOptions('RedisBackplane', options?.redis, options?.url);
    if (options.subscriber !== undefined && options.redis === undefined) {
      throw new InvalidArgumentError('subscriber is only accepted together with redis');
    }
    const instanceId = options.instanceId ?? randomInstanceId();
    if (typeof instanceId !== 'string' || !INSTANCE_ID.test(instanceId)) {
      throw new InvalidArgumentError(`instanceId must be 1 to 64 letters, digits, \`_\` or \`-\`, got ${JSON.stringify(instanceId) ?? String(instanceId)}`);
    }
    this.instanceId = instanceId;
    this.#keys = new Keys(checkPrefix(options.prefix ?? DEFAULT_PREFIX));
    this.#channel = this.#keys.channel(instanceId);
    this.#clock = options.clock ?? systemClock;
    this.#codec = options.codec ?? JSON_CODEC;
    this.#forwardTimeout = checkMs('forwardTimeout', options.forwardTimeout ?? DEFAULT_FORWARD_TIMEOUT);
    this.#retryInterval = checkMs('retryInterval', options.retryInterval ?? DEFAULT_RETRY_INTERVAL);
    this.#leaseTtl = checkMs('leaseTtl', options.leaseTtl ?? DEFAULT_LEASE_TTL);
    this.#grace = checkMs('deadlineGrace', options.deadlineGrace ?? DEFAULT_DEADLINE_GRACE, true);
    this.#commandTimeout = checkMs('commandTimeout', options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT);
    this.#connectTimeout = checkMs('connectTimeout', options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT);
    this.#maxTtl = checkMs('maxTtl', options.maxTtl ?? DEFAULT_MAX_TTL);
    this.#rollbackTtl = clampTtl(checkMs('rollbackTtl', options.rollbackTtl ?? DEFAULT_ROLLBACK_TTL, true), this.#maxTtl);
    this.#duplicateTtl = checkMs('duplicateWindow', options.duplicateWindow ?? DEFAULT_DUPLICATE_WINDOW, true);
    this.#keep = this.#grace + this.#rollbackTtl;
    const rollbackTag = options.rollbackTag ?? DEFAULT_ROLLBACK_TAG;
    if (typeof rollbackTag !== 'string' || rollbackTag.length === 0) {
      throw new InvalidArgumentError(`rollbackTag must be a non-empty string, got ${JSON.stringify(rollbackTag) ?? String(rollbackTag)}`);
    }
    this.#rollbackTag = rollbackTag;
    if (typeof this.#codec?.encode !== 'function' || typeof this.#codec.decode !== 'function') {
      throw new InvalidArgumentError('codec must have encode() and decode() methods');
    }

    const owned: RedisConnection[] = [];
    if (options.url !== undefined) {
      this.#redis = connectUrl(options.url, options.redisOptions);
      this.#subscriber = connectUrl(options.url, options.redisOptions);
      owned.push(this.#redis, this.#subscriber);
    } else {
      this.#redis = options.redis!;
      this.#subscriber = options.subscriber ?? this.#redis.duplicate();
      if (options.subscriber === undefined) owned.push(this.#subscriber);
    }
    this.#owned = owned;
    for (const connection of owned) connection.on('error', this.#onConnectionError);
    this.#scripts = defineScripts(this.#redis);
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
   * @throws {@link BackplaneError} (as a rejection; `redis`) after `connectTimeout`, or when the backplane was closed.
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
   * other instances forward here.
   * @throws `InvalidArgumentError` (from `rrxc`) when a second controller tries to use this backplane.
   */
  start(router: BackplaneRouter): void {
    if (this.#router !== undefined) throw new InvalidArgumentError('a RedisBackplane serves one controller; make one per controller');
    this.#router = router;
  }

  /**
   * A correlation ID naming this instance: `<instanceId>~<nanoid>`. The
   * controller uses it for every ID the application does not choose.
   */
  newCorrelationId(): string {
    return `${this.instanceId}~${nanoid()}`;
  }

  /** Writes the ownership record of `correlationId` (pipelined; failures go to `rrxc:redis:error`). */
  requestRegistered(correlationId: string, deadline: number | undefined): void {
    const remaining = deadline === undefined ? -1 : Math.max(0, Math.ceil(deadline - this.#clock.now()));
    this.#background('register', [correlationId], () =>
      this.#scripts.register(this.#keys.record(correlationId), this.instanceId, remaining, this.#keep, this.#maxTtl),
    );
  }

  /**
   * Ends the ownership records of an ended exchange: answered IDs keep a
   * record for the duplicate window, unanswered ones become rollback tags in
   * the same atomic step.
   */
  requestsEnded(answered: readonly string[], unanswered: readonly string[]): void {
    for (const id of answered) this.#end(id, '1');
    for (const id of unanswered) this.#end(id, '0');
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
    if (derived !== undefined && derived !== this.instanceId) {
      const outcome = await this.#request(derived, correlationId, payload, overwrite);
      if (outcome !== undefined) return outcome;
    }
    // Not an ID we generated, or its owner did not answer: the record decides.
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
    for (const resolve of this.#waiting.values()) resolve(GONE);
    this.#waiting.clear();
    await within(Promise.allSettled(this.#writes), this.#commandTimeout, 'background writes', this.#clock).catch(() => undefined);
    this.#subscriber.off('message', this.#onMessage);
    this.#redis.off('ready', this.#onReconnect);
    if (!this.#owned.includes(this.#subscriber)) await this.#quietly(() => this.#subscriber.unsubscribe(this.#channel));
    if (this.#leaseHeld) await this.#quietly(() => this.#redis.del(this.#keys.lease(this.instanceId)));
    // Their error listener stays: a closed ioredis client may still emit one last error.
    await Promise.all(this.#owned.map((connection) => release(connection, this.#commandTimeout, this.#clock)));
  }

  async #start(): Promise<void> {
    try {
      await within(
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
      throw new BackplaneError('redis', `cannot start the Redis backplane: ${error instanceof Error ? error.message : String(error)}`, error);
    }
    if (this.#closed !== undefined) throw closedError();
    this.#scheduleBeat();
  }

  /** Renews the lease; reports when it had lapsed (or was taken) since the last renewal. */
  async #beat(): Promise<void> {
    const found = await within(
      this.#redis.set(this.#keys.lease(this.instanceId), this.#token, 'PX', this.#leaseTtl, 'GET'),
      this.#commandTimeout,
      'heartbeat timed out',
      this.#clock,
    );
    if (this.#leaseHeld && found !== this.#token && leaseLostChannel.hasSubscribers) {
      leaseLostChannel.publish({ instanceId: this.instanceId, found } satisfies RedisLeaseLostMessage);
    }
    this.#leaseHeld = true;
  }

  #scheduleBeat(): void {
    const timer = this.#clock.setTimeout(() => {
      this.#beat().then(
        () => (this.#failing = false),
        (error: unknown) => this.#report('heartbeat', [], error),
      ).finally(() => {
        if (this.#closed === undefined) this.#scheduleBeat();
      });
    }, Math.max(1, Math.floor(this.#leaseTtl / 3)));
    // The heartbeat alone must not keep the process alive.
    (timer as { unref?: () => void } | undefined)?.unref?.();
    this.#heartbeat = timer;
  }

  /**
   * Sends a reply to `owner` and waits for its outcome, resending every
   * `retryInterval`, for at most `forwardTimeout`. Answers `undefined` when
   * the owner is gone, closing, or silent.
   *
   * The hot path of forwarding: one timer per attempt and no promise per
   * command — the attempt's timer also bounds a PUBLISH that Redis does not
   * answer (p-timeout would build an Error per call, a fifth of the CPU of
   * a forward).
   */
  async #request(owner: string, id: string, payload: string, overwrite: boolean): Promise<ResponseOutcome | undefined> {
    const seq = ++this.#seq;
    const message = `${FORWARD}\n${this.instanceId}\n${seq}\n${overwrite ? 1 : 0}\n${id.length}\n${id}${payload}`;
    const channel = this.#keys.channel(owner);
    const giveUpAt = this.#clock.now() + this.#forwardTimeout;
    try {
      for (;;) {
        const remaining = giveUpAt - this.#clock.now();
        if (remaining <= 0) return undefined;
        const got = await this.#attempt(seq, channel, message, Math.min(this.#retryInterval, remaining));
        if (got === RETRY) continue;
        if (got === NOBODY) {
          // Nobody listens: dead, closed, or reconnecting. Only the last is worth waiting for.
          if ((await this.#command('EXISTS', () => this.#redis.exists(this.#keys.lease(owner)))) === 0) return undefined;
          await new Promise<void>((resolve) => this.#clock.setTimeout(() => resolve(), Math.min(this.#retryInterval, Math.max(1, giveUpAt - this.#clock.now()))));
          continue;
        }
        if (typeof got !== 'string') throw new BackplaneError('redis', `Redis PUBLISH failed: ${describeError(got.error)}`, got.error);
        if (OUTCOMES.has(got)) return got as ResponseOutcome;
        if (got === GONE) {
          if (this.#closed !== undefined) throw closedError();
          return undefined;
        }
        throw new BackplaneError(got.startsWith(`${ERROR}codec`) ? 'codec' : 'owner-failed', `instance \`${owner}\` could not route the reply to \`${id}\`: ${got.slice(ERROR.length)}`);
      }
    } finally {
      this.#waiting.delete(seq);
    }
  }

  /** One send: settles with the owner's answer, {@link NOBODY}, {@link RETRY} after `ms`, or the PUBLISH failure. */
  #attempt(seq: number, channel: string, message: string, ms: number): Promise<Attempt> {
    return new Promise((resolve) => {
      let done = false;
      const settle = (value: Attempt): void => {
        if (done) return;
        done = true;
        this.#clock.clearTimeout(timer);
        resolve(value);
      };
      const timer = this.#clock.setTimeout(() => settle(RETRY), ms);
      this.#waiting.set(seq, settle);
      this.#send(channel, message).then(
        (receivers) => receivers === 0 && settle(NOBODY),
        (error: unknown) => settle({ error }),
      );
    });
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
    const outcome = await this.#command('settle', () =>
      this.#scripts.settle(this.#keys.record(id), this.#keys.tags(id), owner, alive, this.#grace, this.#rollbackTag, this.#rollbackTtl),
    );
    if (outcome === 'pending') {
      throw new BackplaneError(
        'owner-unreachable',
        `instance \`${owner}\` owns \`${id}\` but did not answer within forwardTimeout (${this.#forwardTimeout} ms); it is alive and the request's deadline has not passed, so the reply may still be delivered there`,
      );
    }
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
      this.#waiting.get(Number(raw.slice(2, end)))?.(raw.slice(end + 1));
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

    const key = `${from}\n${seq}`;
    let answer = this.#answers.get(key) ?? this.#oldAnswers.get(key);
    if (answer === undefined) {
      answer = this.#deliver(id, payload, overwrite);
      this.#remember(key, answer);
    }
    void answer.then((outcome) =>
      // A lost acknowledgement is repeated when the sender resends.
      this.#send(this.#keys.channel(from), `${ACK}\n${seq}\n${outcome}`).catch(() => undefined),
    );
  }

  /**
   * Publishes `message` on `channel` together with every other message for
   * that channel in this event-loop turn: one PUBLISH (and one message to
   * parse on the other side) per turn and instance rather than per reply.
   * Resolves with the number of receivers.
   */
  #send(channel: string, message: string): Promise<number> {
    let batch = this.#outbox.get(channel);
    if (batch === undefined) {
      let flushed!: (receivers: Promise<number>) => void;
      batch = { frames: '', sent: new Promise<number>((resolve) => (flushed = resolve)), flush: flushed };
      this.#outbox.set(channel, batch);
      if (this.#outbox.size === 1) setImmediate(this.#flush);
    }
    batch.frames += `${message.length}:${message}`;
    return batch.sent;
  }

  readonly #flush = (): void => {
    for (const [channel, batch] of this.#outbox) batch.flush(Promise.resolve(this.#redis.publish(channel, batch.frames)));
    this.#outbox.clear();
  };

  #deliver(id: string, payload: string, overwrite: boolean): Promise<string> {
    const router = this.#router;
    if (router === undefined || this.#closed !== undefined) return Promise.resolve(GONE);
    let message: unknown;
    try {
      message = this.#codec.decode(payload);
    } catch (error) {
      this.#report('decode', [id], error);
      return Promise.resolve(`${ERROR}codec: ${error instanceof Error ? error.message : String(error)}`);
    }
    return router.deliver(id, message, overwrite).then(
      (outcome): string => outcome,
      (error: unknown) => `${ERROR}${error instanceof Error ? error.message : String(error)}`,
    );
  }

  #remember(key: string, answer: Promise<string>): void {
    const now = this.#clock.now();
    // Kept at least twice forwardTimeout: longer than any sender resends.
    if (now - this.#answersSince > 2 * this.#forwardTimeout) {
      this.#oldAnswers = this.#answers;
      this.#answers = new Map();
      this.#answersSince = now;
    }
    this.#answers.set(key, answer);
  }

  #end(id: string, answered: '1' | '0'): void {
    this.#background('end', [id], async () => {
      const result = await this.#scripts.end(
        this.#keys.record(id),
        this.#keys.tags(id),
        this.instanceId,
        answered,
        this.#duplicateTtl,
        this.#rollbackTag,
        this.#rollbackTtl,
      );
      if (result === 2 && conflictChannel.hasSubscribers) {
        conflictChannel.publish({ instanceId: this.instanceId, correlationId: id } satisfies RedisConflictMessage);
      }
    });
  }

  /** A write nobody awaits: tracked for `close()`, failures reported. Never throws. */
  #background(operation: string, ids: readonly string[], write: () => Promise<unknown>): void {
    let written: Promise<unknown>;
    try {
      written = write();
    } catch (error) {
      written = Promise.reject(error);
    }
    const tracked = written.then(
      () => (this.#failing = false),
      (error: unknown) => this.#report(operation, ids, error),
    );
    this.#writes.add(tracked);
    void tracked.finally(() => this.#writes.delete(tracked));
  }

  /** One Redis command on the forwarding path: bounded, failures as {@link BackplaneError}. */
  async #command<T>(name: string, call: () => Promise<T>): Promise<T> {
    try {
      return await within(call(), this.#commandTimeout, `no answer within commandTimeout (${this.#commandTimeout} ms)`, this.#clock);
    } catch (error) {
      throw new BackplaneError('redis', `Redis ${name} failed: ${error instanceof Error ? error.message : String(error)}`, error);
    }
  }

  async #quietly(call: () => Promise<unknown>): Promise<void> {
    try {
      await within(call(), this.#commandTimeout, 'timed out', this.#clock);
    } catch {
      // Closing: the connection may already be gone, and the keys expire anyway.
    }
  }

  readonly #onConnectionError = (error: unknown): void => this.#report('connection', [], error);

  #report(operation: string, correlationIds: readonly string[], error: unknown): void {
    const wrapped =
      error instanceof BackplaneError ? error : new BackplaneError('redis', `Redis ${operation} failed: ${error instanceof Error ? error.message : String(error)}`, error);
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

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function closedError(): BackplaneError {
  return new BackplaneError('closed', 'the Redis backplane is closed');
}
