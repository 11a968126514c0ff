import { MemoryTagStore, systemClock, type Clock } from '../../src/index.js';
import { DEFAULT_LEASE_TTL, RedisBackplane } from '../../src/redis/index.js';
import { InProcessBackplane } from '../helpers/in-process-backplane.js';
import { redisForFile } from '../helpers/redis-for-file.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { uniquePrefix } from '../helpers/redis-server.js';
import { describeBackplane, type BackplaneCluster } from './backplane.js';

const redis = redisForFile();

/** `size` in-process backplanes joined to each other, their controllers sharing one tag store. */
function inProcessCluster(size: number, idPrefix: (index: number) => string | undefined): BackplaneCluster {
  const tags = new MemoryTagStore();
  const backplanes = Array.from({ length: size }, (_, index) => {
    const prefix = idPrefix(index);
    return new InProcessBackplane(prefix === undefined ? { tags } : { tags, idPrefix: prefix });
  });
  InProcessBackplane.join(backplanes);
  return { backplanes, tagStore: () => tags, loseLease: (index) => backplanes[index]!.loseLease() };
}

describeBackplane('InProcessBackplane', async (size) => inProcessCluster(size, () => undefined));

describeBackplane('InProcessBackplane with idPrefix', async (size) => inProcessCluster(size, (index) => `i${index}~`));

describeBackplane('RedisBackplane', async (size) => {
  const prefix = uniquePrefix('backplane-conformance');
  // Each instance reads the time through its own clock, which loseLease()
  // moves past the lease: as if its heartbeats had stalled that long.
  const skews = Array.from({ length: size }, () => 0);
  const clocks = skews.map((_, index): Clock => ({ ...systemClock, now: () => systemClock.now() + skews[index]! }));
  const backplanes = await Promise.all(clocks.map((clock) => RedisBackplane.connect({ url: redis.url, prefix, clock })));
  return {
    backplanes,
    tagStore: (index) => backplanes[index]!.tagStore,
    // IDs the application chooses get their ownership record in the background.
    settle: () => new Promise((resolve) => setTimeout(resolve, 30)),
    loseLease: (index) => void (skews[index] = 2 * DEFAULT_LEASE_TTL),
    cleanup: async () => {
      await Promise.all(backplanes.map((backplane) => backplane.close()));
      await deleteKeys(redis.connection, prefix);
    },
  };
});
