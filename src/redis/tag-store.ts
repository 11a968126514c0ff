import { TagStoreError } from '../errors.js';
import type { TagStore } from '../adapters.js';
import { Bounds, connectUrl, readyOrClosed, release, whenReady, type RedisConnection } from './_connection.js';
import { Keys } from './_keys.js';
import { clampTtl, resolveTagStoreOptions, type RedisTagStoreOptions } from './options.js';
import { defineScripts, type Scripts } from './_scripts.js';

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
 * const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
 * const controller = new Controller({ tagStore: new RedisTagStore({ redis, prefix: 'orders:' }) });
 * ```
 */
export class RedisTagStore implements TagStore {
  readonly #redis: RedisConnection;
  readonly #owned: boolean;
  readonly #scripts: Scripts;
  readonly #keys: Keys;
  readonly #maxTtl: number;
  /** Bounds by `connectTimeout`: the wait for the connection, and its closing. */
  readonly #connecting: Bounds;
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
    const resolved = resolveTagStoreOptions(options);
    this.#keys = new Keys(resolved.prefix);
    this.#maxTtl = resolved.maxTtl;
    this.#connecting = new Bounds('connectTimeout', resolved.connectTimeout, resolved.clock);
    this.#owned = resolved.redis === undefined;
    this.#redis = resolved.redis ?? connectUrl(resolved.url!, resolved.redisOptions);
    if (this.#owned) this.#redis.on('error', ignore);
    this.#scripts = defineScripts(this.#redis);
  }

  /**
   * Resolves once the connection is ready (at once if it already is).
   * @throws `TagStoreError` (from `rrxc`) (as a rejection) after `connectTimeout`.
   */
  ready(): Promise<void> {
    // It says what went wrong through its cause: p-timeout's TimeoutError, or the connection's own error.
    return whenReady(this.#redis, this.#connecting, (why, cause) => new TagStoreError('connect', cause ?? why));
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
   * Settles `id` once, in one script: adds `tag` unless `id` carries a live
   * tag among `tag` and `rivals`. TTLs as for {@link RedisTagStore.tag}.
   *
   * @returns `undefined` when this call added `tag`; otherwise the live tag that held the claim.
   */
  async claim(id: string, tag: string, ttl: number, rivals: readonly string[]): Promise<string | undefined> {
    return (await this.#scripts.claim(this.#keys.tags(id), tag, clampTtl(ttl, this.#maxTtl), rivals)) ?? undefined;
  }

  /**
   * Closes the connection made from `url`; a connection given as `redis`
   * stays open. Tags stay in Redis until they expire. Idempotent.
   */
  close(): Promise<void> {
    return (this.#closed ??= this.#owned ? release(this.#redis, this.#connecting) : Promise.resolve());
  }
}

function ignore(): void {
  // Connection errors surface as failed commands; ioredis would otherwise print them.
}
