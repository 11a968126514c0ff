import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { MemoryTagStore } from '../../src/index.js';
import { RedisTagStore } from '../../src/redis/index.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { uniquePrefix, useRedis, type TestRedis } from '../helpers/redis-server.js';
import { describeTagStore } from './tag-store.js';

let server: TestRedis;
let redis: Redis;

beforeAll(async () => {
  server = await useRedis();
  redis = new Redis(server.url);
});

afterAll(async () => {
  await redis.quit();
  await server.stop();
});

describeTagStore('MemoryTagStore on a manual clock', async () => {
  const clock = new ManualClock();
  return { store: new MemoryTagStore({ clock }), advance: (ms) => clock.advance(ms) };
});

describeTagStore('RedisTagStore on a given connection', async () => {
  const prefix = uniquePrefix('tag-store');
  return { store: new RedisTagStore({ redis, prefix }), cleanup: () => deleteKeys(redis, prefix) };
});

describeTagStore('RedisTagStore on its own connection (url)', async () => {
  const prefix = uniquePrefix('tag-store-url');
  return { store: await RedisTagStore.connect({ url: server.url, prefix }), cleanup: () => deleteKeys(redis, prefix) };
});
