import type { RedisOptions } from 'ioredis';
import type { Clock } from '../clock.js';
import { TagStoreError } from '../errors.js';
import { checkClock, checkOptionsObject } from '../_validate.js';
import type { TagStore } from '../adapters.js';
import { checkConnectionOptions, connectUrl, readyOrClosed, release, whenReady } from './_connection.js';
import { checkPrefix, DEFAULT_PREFIX, Keys } from './_keys.js';
import { checkDuration, checkRedisTtl, clampTtl } from './_options.js';
import { defineScripts, type RedisConnection, type Scripts } from './_scripts.js';

/** Default {@link RedisTagStoreOptions.maxTtl}: 30 days. */
export const DEFAULT_MAX_TTL = 30 * 24 * 60 * 60 * 1000;
/** Default {@link RedisTagStoreOptions.connectTimeout} (and the backplane's). */
export const DEFAULT_CONNECT_TIMEOUT = 5_000;

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
   * {@link TagStore} contract) and any longer TTL are cut to it, so that no
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

/**
 * A {@link TagStore} in Redis, so that a rollback tag written by one instance
 * is seen by every other one, and survives the restart of the one that wrote
 * it. Each ID is one hash (`<prefix>t:{<id>}`, field = tag, value = expiry)
 * that expires with its last tag; expiry is computed from Redis server time,
 * so instances whose clocks disagree still agree on what is live.
 *
 * Each call is one round trip (a Lua script). The controller bounds it by
 * its `storeTimeout` and reports a failure as `TagStoreError`.
 *
 * With a {@link RedisBackplane}, use its {@link RedisBackplane.tagStore}: it
 * shares the backplane's connection and key prefix, and closes with it.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { Controller } from 'rrxc';
 * import { RedisTagStore } from 'rrxc/redis';
 *
 * const redis = new Redis(process.env.REDIS_URL);
 * const controller = new Controller({ tagStore: new RedisTagStore({ redis, prefix: 'orders:' }) });
 * ```
 */
export class RedisTagStore implements TagStore {
  readonly #redis: RedisConnection;
  readonly #owned: boolean;
  readonly #scripts: Scripts;
  readonly #keys: Keys;
  readonly #maxTtl: number;
  readonly #connectTimeout: number;
  readonly #clock: Clock;
  #closed: Promise<void> | undefined;

  /**
   * Makes a store and waits until Redis answers, so that a wrong URL or a
   * Redis that is down fails here, clearly, rather than on the first reply.
   *
   * @param options - See {@link RedisTagStoreOptions}.
   * @returns A store whose connection is ready.
   * @throws `TagStoreError` (from `rrxc`) (as a rejection; operation `connect`) when Redis does not answer within `connectTimeout`; a connection it made is closed again.
   * @throws `InvalidArgumentError` (from `rrxc`) for bad options.
   */
  static async connect(options: RedisTagStoreOptions): Promise<RedisTagStore> {
    return readyOrClosed(new RedisTagStore(options));
  }

  /**
   * Makes a store without waiting for Redis; see {@link RedisTagStore.connect}
   * for the variant that does.
   *
   * @param options - See {@link RedisTagStoreOptions}.
   * @throws `InvalidArgumentError` (from `rrxc`) for bad options.
   */
  constructor(options: RedisTagStoreOptions) {
    const given = checkOptionsObject(options, 'RedisTagStore options', TAG_STORE_KEYS);
    checkConnectionOptions('RedisTagStore', given.redis, given.url);
    this.#keys = new Keys(checkPrefix(given.prefix ?? DEFAULT_PREFIX));
    this.#maxTtl = checkRedisTtl('maxTtl', given.maxTtl ?? DEFAULT_MAX_TTL);
    this.#connectTimeout = checkDuration('connectTimeout', given.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT);
    this.#clock = checkClock(given.clock);
    this.#owned = given.redis === undefined;
    this.#redis = given.redis ?? connectUrl(given.url!, given.redisOptions);
    if (this.#owned) this.#redis.on('error', ignore);
    this.#scripts = defineScripts(this.#redis);
  }

  /**
   * Resolves once the connection is ready (at once if it already is).
   * @throws `TagStoreError` (from `rrxc`) (as a rejection) after `connectTimeout`.
   */
  async ready(): Promise<void> {
    try {
      await whenReady(this.#redis, this.#connectTimeout, this.#clock);
    } catch (error) {
      throw new TagStoreError('connect', error);
    }
  }

  /**
   * Adds `tag` to `id` for `ttl` milliseconds; tagging again replaces the
   * TTL. A `ttl` of `0` (no expiry), or one above `maxTtl`, is stored as
   * `maxTtl`.
   */
  async tag(id: string, tag: string, ttl: number): Promise<void> {
    await this.#scripts.tag(this.#keys.tags(id), tag, clampTtl(ttl, this.#maxTtl));
  }

  /** Removes `tag` from `id`; resolves whether it was there and live. */
  async untag(id: string, tag: string): Promise<boolean> {
    return (await this.#scripts.untag(this.#keys.tags(id), tag)) === 1;
  }

  /** The live (unexpired) tags of `id`, in any order. */
  getTags(id: string): Promise<readonly string[]> {
    return this.#scripts.getTags(this.#keys.tags(id));
  }

  /**
   * Closes the connection made from `url`; a connection given as `redis`
   * stays open. Tags stay in Redis until they expire. Idempotent.
   */
  close(): Promise<void> {
    return (this.#closed ??= this.#owned ? release(this.#redis, this.#connectTimeout, this.#clock) : Promise.resolve());
  }
}

const TAG_STORE_KEYS: ReadonlySet<string> = new Set<keyof RedisTagStoreOptions>(['redis', 'url', 'redisOptions', 'prefix', 'maxTtl', 'connectTimeout', 'clock']);

function ignore(): void {
  // Connection errors surface as failed commands; ioredis would otherwise print them.
}
