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
 */
export {
  RedisBackplane,
  JSON_CODEC,
  DEFAULT_COMMAND_TIMEOUT,
  DEFAULT_DEADLINE_GRACE,
  DEFAULT_FORWARD_TIMEOUT,
  DEFAULT_LEASE_TTL,
  DEFAULT_RETRY_INTERVAL,
  type RedisBackplaneOptions,
  type RedisCodec,
} from './backplane.js';
export { RedisTagStore, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_TTL, type RedisTagStoreOptions } from './tag-store.js';
export { BackplaneError, type BackplaneFailure } from '../errors.js';
export { REDIS_CHANNELS, type RedisConflictMessage, type RedisErrorMessage, type RedisLeaseLostMessage } from './channels.js';
export { DEFAULT_PREFIX } from './_keys.js';
export type { RedisConnection } from './_scripts.js';
