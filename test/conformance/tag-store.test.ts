import { MemoryTagStore } from '../../src/index.js';
import { RedisTagStore } from '../../src/redis/index.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { redisForFile } from '../helpers/redis-for-file.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { uniquePrefix } from '../helpers/redis-server.js';
import { describeTagStore } from './tag-store.js';

const redis = redisForFile();

describeTagStore('MemoryTagStore on a manual clock', async () => {
  const clock = new ManualClock();
  return { store: new MemoryTagStore({ clock }), advance: (ms) => clock.advance(ms) };
});

describeTagStore('RedisTagStore on a given connection', async () => {
  const prefix = uniquePrefix('tag-store');
  return { store: new RedisTagStore({ redis: redis.connection, prefix }), cleanup: () => deleteKeys(redis.connection, prefix) };
});

describeTagStore('RedisTagStore on its own connection (url)', async () => {
  const prefix = uniquePrefix('tag-store-url');
  return { store: await RedisTagStore.connect({ url: redis.url, prefix }), cleanup: () => deleteKeys(redis.connection, prefix) };
});
