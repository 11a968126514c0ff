// rrxc/redis on ioredis 6: the TagStore and Backplane conformance suites
// again, with every `ioredis` import of this file's module graph (rrxc's
// src/redis/ and the test helpers) served by the `ioredis6` dev dependency
// (`npm:ioredis@^6`). A user has one ioredis, 5 or 6 as the peer range
// allows; so does this file, while the other files run on ioredis 5. Only
// the client library is swapped: the commands go to a real Redis.
import { createRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';
import { RedisBackplane, RedisTagStore } from '../../src/redis/index.js';
import { describeBackplane } from '../conformance/backplane.js';
import { describeTagStore } from '../conformance/tag-store.js';
import { redisBackplanes } from '../helpers/redis-backplanes.js';
import { redisForFile } from '../helpers/redis-for-file.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { uniquePrefix } from '../helpers/redis-server.js';

vi.mock('ioredis', () => import('ioredis6'));

const redis = redisForFile();

describe('ioredis in this file', () => {
  it('is ioredis 6, the same module for rrxc and for the tests', async () => {
    const { version } = createRequire(import.meta.url)('ioredis6/package.json') as { version: string };
    expect(version).toMatch(/^6\./);
    const [asImported, six] = await Promise.all([import('ioredis'), import('ioredis6')]);
    expect(asImported.Redis).toBe(six.Redis);
    expect(redis.connection).toBeInstanceOf(six.Redis);
  });
});

describeTagStore('RedisTagStore on ioredis 6, on a given connection', async () => {
  const prefix = uniquePrefix('tag-store-ioredis6');
  return { store: new RedisTagStore({ redis: redis.connection, prefix }), cleanup: () => deleteKeys(redis.connection, prefix) };
});

describeTagStore('RedisTagStore on ioredis 6, on its own connection (url)', async () => {
  const prefix = uniquePrefix('tag-store-ioredis6-url');
  return { store: await RedisTagStore.connect({ url: redis.url, prefix }), cleanup: () => deleteKeys(redis.connection, prefix) };
});

describeBackplane('RedisBackplane on ioredis 6', (size) => redisBackplanes(redis, size));

describeBackplane('RedisBackplane on ioredis 6, on given connections', (size) => {
  // Each backplane duplicates its connection for its subscription, and closes that copy itself.
  const connections = Array.from({ length: size }, () => redis.connection.duplicate({ enableAutoPipelining: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 }));
  return redisBackplanes(
    redis,
    size,
    (options, index) => RedisBackplane.connect({ ...options, redis: connections[index]! }),
    () => Promise.all(connections.map((connection) => connection.quit())),
    size,
  );
});
