/**
 * `rrxc/redis` — many instances of one service on one Redis: replies that
 * reach any instance are delivered by the one that owns their exchange
 * ({@link RedisBackplane}), and rollback tags every instance sees
 * ({@link RedisTagStore}). Needs `ioredis` (a peer dependency).
 *
 * @example
 * ```ts
 * import { Controller } from 'rrxc';
 * import { RedisBackplane } from 'rrxc/redis';
 *
 * const backplane = await RedisBackplane.connect({ url: 'redis://127.0.0.1:6379', prefix: 'orders:' });
 * const controller = new Controller({ backplane, tagStore: backplane.tagStore, timeout: 5_000 });
 * ```
 *
 * @packageDocumentation
 * @module rrxc/redis
 */
export { RedisBackplane } from './backplane.js';
export { RedisTagStore } from './tag-store.js';
export {
  JSON_CODEC,
  DEFAULT_COMMAND_TIMEOUT,
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_DEADLINE_GRACE,
  DEFAULT_FORWARD_TIMEOUT,
  DEFAULT_LEASE_TTL,
  DEFAULT_MAX_TTL,
  DEFAULT_PREFIX,
  DEFAULT_RETRY_INTERVAL,
  type RedisBackplaneOptions,
  type RedisCodec,
  type RedisTagStoreOptions,
} from './options.js';
export { BackplaneError, type BackplaneFailure } from '../errors.js';
export { REDIS_CHANNELS, type RedisConflictMessage, type RedisErrorMessage, type RedisLeaseLostMessage } from './channels.js';
export type { RedisConnection } from './_connection.js';
