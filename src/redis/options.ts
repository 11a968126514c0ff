// The options of rrxc/redis: their types, their defaults, and the one step
// that checks them, so that both components validate every option once, in
// their constructors, the same way.
import { customAlphabet } from 'nanoid';
import type { RedisOptions } from 'ioredis';
import { MAX_TIMEOUT, type Clock } from '../clock.js';
import { InvalidArgumentError } from '../errors.js';
import { describe } from '../_describe.js';
import { checkClock, checkMethods, checkOptionsObject, optionKeys } from '../_validate.js';
import type { RedisConnection } from './_connection.js';

/** Default key prefix of every key and channel rrxc/redis writes. */
export const DEFAULT_PREFIX = 'rrxc:';
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
/** Default {@link RedisTagStoreOptions.maxTtl} (and the backplane's): 30 days. */
export const DEFAULT_MAX_TTL = 30 * 24 * 60 * 60 * 1000;
/** Default {@link RedisTagStoreOptions.connectTimeout} (and the backplane's). */
export const DEFAULT_CONNECT_TIMEOUT = 5_000;

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
   * Longest life of any key written, in ms (rollback tags with TTL `0`, the
   * ownership of requests without a deadline).
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

/**
 * Options of {@link RedisTagStore}. Give exactly one of `redis` and `url`; an
 * unknown key is an error (it is usually a typo). `connectTimeout` is at most
 * `MAX_TIMEOUT` (from `rrxc`), the longest timer Node holds; `maxTtl`, which
 * is no timer, at most `Number.MAX_SAFE_INTEGER`.
 */
export interface RedisTagStoreOptions {
  /**
   * An ioredis connection (`Redis` or `Cluster`) the store issues its commands
   * on. It stays yours: {@link RedisTagStore.close} leaves it open.
   */
  redis?: RedisConnection;
  /**
   * A Redis URL (`redis://host:6379/0`, `rediss://…`) to connect to. The store
   * makes its own connection and {@link RedisTagStore.close} closes it.
   */
  url?: string;
  /**
   * ioredis options for the connection made from `url`, over rrxc's defaults
   * (no offline queue, one retry per command, auto-pipelining).
   */
  redisOptions?: RedisOptions;
  /**
   * Prefix of every key. Give each application (and each test) its own. No
   * `{` or `}`: the correlation ID is the Cluster hash tag.
   * @defaultValue `"rrxc:"`
   */
  prefix?: string;
  /**
   * Longest time a tag lives, in ms: a TTL of `0` ("no expiry" in the
   * `TagStore` contract) and any longer TTL are cut to it, so that no
   * key is ever left without an expiry in Redis.
   * @defaultValue 2 592 000 000 (30 days)
   */
  maxTtl?: number;
  /**
   * Milliseconds {@link RedisTagStore.connect} waits for Redis.
   * @defaultValue 5 000
   */
  connectTimeout?: number;
  /**
   * Time source for the connection timeout, for tests.
   * @defaultValue `systemClock` (from `rrxc`)
   */
  clock?: Clock;
}

/** Where a component's connections come from: exactly one of `redis` (given) and `url` (to make them from). */
interface ConnectionSource {
  readonly redis: RedisConnection | undefined;
  readonly subscriber: RedisConnection | undefined;
  readonly url: string | undefined;
  readonly redisOptions: RedisOptions | undefined;
}

type ConnectionOptions = keyof ConnectionSource;

/** @internal {@link RedisBackplaneOptions}, checked, with every default applied. */
export type ResolvedBackplaneOptions = Readonly<Required<Omit<RedisBackplaneOptions, ConnectionOptions>>> & ConnectionSource;

/** {@link RedisTagStoreOptions}, checked, with every default applied. */
type ResolvedTagStoreOptions = Readonly<Required<Omit<RedisTagStoreOptions, ConnectionOptions>>> & Omit<ConnectionSource, 'subscriber'>;

/**
 * @internal Checks the options of a {@link RedisBackplane} and applies the defaults.
 * @throws {@link InvalidArgumentError} for the first option that is wrong.
 */
export function resolveBackplaneOptions(options: RedisBackplaneOptions): ResolvedBackplaneOptions {
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
  if (!isInstanceId(instanceId)) {
    throw new InvalidArgumentError(`instanceId must be 1 to 64 letters, digits, \`_\` or \`-\`, got ${describe(instanceId)}`);
  }
  return {
    redis: given.redis,
    subscriber: given.subscriber,
    url: given.url,
    redisOptions: given.redisOptions,
    instanceId,
    prefix: checkPrefix(given.prefix ?? DEFAULT_PREFIX),
    clock: checkClock(given.clock),
    codec: checkMethods('codec', given.codec, ['encode', 'decode']) ?? JSON_CODEC,
    forwardTimeout: checkDuration('forwardTimeout', given.forwardTimeout ?? DEFAULT_FORWARD_TIMEOUT),
    retryInterval: checkDuration('retryInterval', given.retryInterval ?? DEFAULT_RETRY_INTERVAL),
    leaseTtl: checkDuration('leaseTtl', given.leaseTtl ?? DEFAULT_LEASE_TTL),
    deadlineGrace: checkDuration('deadlineGrace', given.deadlineGrace ?? DEFAULT_DEADLINE_GRACE, true),
    commandTimeout: checkDuration('commandTimeout', given.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT),
    connectTimeout: checkDuration('connectTimeout', given.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT),
    maxTtl: checkRedisTtl('maxTtl', given.maxTtl ?? DEFAULT_MAX_TTL),
  };
}

/**
 * @internal Checks the options of a {@link RedisTagStore} and applies the defaults.
 * @throws {@link InvalidArgumentError} for the first option that is wrong.
 */
export function resolveTagStoreOptions(options: RedisTagStoreOptions): ResolvedTagStoreOptions {
  const given = checkOptionsObject(options, 'RedisTagStore options', TAG_STORE_KEYS);
  checkConnectionOptions('RedisTagStore', given.redis, given.url);
  return {
    redis: given.redis,
    url: given.url,
    redisOptions: given.redisOptions,
    prefix: checkPrefix(given.prefix ?? DEFAULT_PREFIX),
    maxTtl: checkRedisTtl('maxTtl', given.maxTtl ?? DEFAULT_MAX_TTL),
    connectTimeout: checkDuration('connectTimeout', given.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT),
    clock: checkClock(given.clock),
  };
}

/** @internal Whether `value` can name an instance: it heads the IDs that instance generates. */
export function isInstanceId(value: unknown): value is string {
  return typeof value === 'string' && INSTANCE_ID.test(value);
}

/** @internal The TTL written to Redis: `0` (no expiry) and anything longer become `maxTtl`. */
export function clampTtl(ttl: number, maxTtl: number): number {
  return ttl === 0 || ttl > maxTtl ? maxTtl : Math.max(1, Math.ceil(ttl));
}

const BACKPLANE_KEYS = optionKeys<RedisBackplaneOptions>({
  redis: true,
  subscriber: true,
  url: true,
  redisOptions: true,
  prefix: true,
  instanceId: true,
  forwardTimeout: true,
  retryInterval: true,
  leaseTtl: true,
  deadlineGrace: true,
  commandTimeout: true,
  connectTimeout: true,
  maxTtl: true,
  codec: true,
  clock: true,
});

const TAG_STORE_KEYS = optionKeys<RedisTagStoreOptions>({
  redis: true,
  url: true,
  redisOptions: true,
  prefix: true,
  maxTtl: true,
  connectTimeout: true,
  clock: true,
});

/** Former options, now the controller's: rejected with a message of their own rather than as unknown. */
const MOVED_KEYS = ['rollbackTag', 'rollbackTtl', 'duplicateWindow'];

const INSTANCE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const randomInstanceId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 12);

/** Throws unless exactly one of the mutually exclusive `redis` and `url` options was given, and it is of the right kind. */
function checkConnectionOptions(component: string, redis: unknown, url: unknown): void {
  if ((redis === undefined) === (url === undefined)) {
    throw new InvalidArgumentError(`${component} needs exactly one of \`redis\` (an ioredis connection) and \`url\`, got ${redis === undefined ? 'neither' : 'both'}`);
  }
  if (url !== undefined && typeof url !== 'string') {
    throw new InvalidArgumentError(`url must be a string, got ${typeof url}`);
  }
  if (redis !== undefined && (typeof redis !== 'object' || redis === null || typeof (redis as { defineCommand?: unknown }).defineCommand !== 'function')) {
    throw new InvalidArgumentError(`redis must be an ioredis Redis or Cluster connection, got ${redis === null ? 'null' : typeof redis}`);
  }
}

/** Checks a key prefix: a string without braces (they would break the Cluster hash tags). */
function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw new InvalidArgumentError(`prefix must be a string without \`{\` or \`}\`, got ${describe(prefix)}`);
  }
  return prefix;
}

/**
 * Checks a duration option that arms a timer (or, like `deadlineGrace`,
 * allows for one firing late): a positive number of milliseconds (or 0 when
 * `zero` allows it) of at most {@link MAX_TIMEOUT}, since Node fires a longer
 * timer after 1 ms.
 */
function checkDuration(name: string, value: unknown, zero = false): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (!zero && value === 0) || value > MAX_TIMEOUT) {
    throw new InvalidArgumentError(`${name} must be a ${zero ? 'non-negative' : 'positive'} number of milliseconds, at most ${MAX_TIMEOUT}, got ${describe(value)}`);
  }
  return Math.ceil(value);
}

/**
 * Checks `maxTtl`, a TTL written to Redis. It arms no timer, so it may
 * exceed {@link MAX_TIMEOUT} (its 30-day default does); its bound is what
 * Redis takes instead. The scripts pass TTLs to `PEXPIRE` as Lua numbers,
 * which Redis formats with 17 significant digits: from 10¹⁷ on it gets
 * `1e+17` and refuses every write. Up to `Number.MAX_SAFE_INTEGER`, Lua
 * holds the integer exactly and Redis gets it as one.
 */
function checkRedisTtl(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0) || value > Number.MAX_SAFE_INTEGER) {
    throw new InvalidArgumentError(`${name} must be a positive number of milliseconds, at most ${Number.MAX_SAFE_INTEGER}, got ${describe(value)}`);
  }
  return Math.ceil(value);
}
