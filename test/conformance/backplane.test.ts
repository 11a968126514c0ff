import { MemoryTagStore } from '../../src/index.js';
import { InProcessBackplane } from '../helpers/in-process-backplane.js';
import { redisBackplanes } from '../helpers/redis-backplanes.js';
import { redisForFile } from '../helpers/redis-for-file.js';
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

describeBackplane('RedisBackplane', (size) => redisBackplanes(redis, size));
