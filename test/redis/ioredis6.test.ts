// rrxc/redis on ioredis 6: the TagStore and Backplane conformance suites
// again, with every `ioredis` import of this file's module graph (rrxc's
// src/redis/ and the test helpers) served by the `ioredis6` dev dependency
// (`npm:ioredis@^6`). A user has one ioredis, 5 or 6 as the peer range
// allows; so does this file, while the other files run on ioredis 5. Only
// the client library is swapped: the commands go to a real Redis.
import { createRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';
import { systemClock, type Clock } from '../../src/index.js';
import { DEFAULT_LEASE_TTL, RedisBackplane, RedisTagStore } from '../../src/redis/index.js';
import { describeBackplane, type BackplaneCluster } from '../conformance/backplane.js';
import { describeTagStore } from '../conformance/tag-store.js';
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

/**
 * A cluster of `size` Redis backplanes, instance `index` made by `connect`,
 * as in the ioredis 5 run (test/conformance/backplane.test.ts): each
 * instance reads the time through its own clock, which loseLease() moves
 * past the lease.
 */
async function redisCluster(size: number, connect: (options: { prefix: string; clock: Clock }, index: number) => Promise<RedisBackplane>, release?: () => Promise<unknown>): Promise<BackplaneCluster> {
  const prefix = uniquePrefix('backplane-ioredis6');
  const skews = Array.from({ length: size }, () => 0);
  const clocks = skews.map((_, index): Clock => ({ ...systemClock, now: () => systemClock.now() + skews[index]! }));
  const backplanes = await Promise.all(clocks.map((clock, index) => connect({ prefix, clock }, index)));
  return {
    backplanes,
    tagStore: (index) => backplanes[index]!.tagStore,
    settle: () => new Promise((resolve) => setTimeout(resolve, 30)),
    loseLease: (index) => void (skews[index] = 2 * DEFAULT_LEASE_TTL),
    cleanup: async () => {
      await Promise.all(backplanes.map((backplane) => backplane.close()));
      await deleteKeys(redis.connection, prefix);
      await release?.();
    },
  };
}

describeBackplane('RedisBackplane on ioredis 6', (size) => redisCluster(size, (options) => RedisBackplane.connect({ ...options, url: redis.url })));

describeBackplane('RedisBackplane on ioredis 6, on given connections', (size) => {
  // Each backplane duplicates its connection for its subscription, and closes that copy itself.
  const connections = Array.from({ length: size }, () => redis.connection.duplicate({ enableAutoPipelining: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 }));
  return redisCluster(
    size,
    (options, index) => RedisBackplane.connect({ ...options, redis: connections[index]! }),
    () => Promise.all(connections.map((connection) => connection.quit())),
  );
});
