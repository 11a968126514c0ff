import { systemClock, type Clock } from '../../src/index.js';
import { DEFAULT_LEASE_TTL, RedisBackplane } from '../../src/redis/index.js';
import type { BackplaneCluster } from '../conformance/backplane.js';
import type { FileRedis } from './redis-for-file.js';
import { deleteKeys } from './redis-keys.js';
import { uniquePrefix } from './redis-server.js';

/** How instance `index` of a cluster connects, given the options every instance shares. */
export type ConnectBackplane = (options: { prefix: string; clock: Clock }, index: number) => Promise<RedisBackplane>;

/**
 * A cluster of `size` Redis backplanes for the Backplane conformance suite,
 * by default each on its own connection to `redis.url`. Each instance reads
 * the time through its own clock, which `loseLease()` moves past the lease:
 * as if its heartbeats had stalled that long.
 *
 * @param release - Run after the backplanes closed and their keys went (say, to quit given connections).
 * @param givenSockets - How many sockets `release` closes: connections given to the backplanes.
 */
export async function redisBackplanes(
  redis: FileRedis,
  size: number,
  connect: ConnectBackplane = (options) => RedisBackplane.connect({ ...options, url: redis.url }),
  release?: () => Promise<unknown>,
  givenSockets = 0,
): Promise<BackplaneCluster> {
  const prefix = uniquePrefix('backplane-conformance');
  const skews = Array.from({ length: size }, () => 0);
  const clocks = skews.map((_, index): Clock => ({ ...systemClock, now: () => systemClock.now() + skews[index]! }));
  const backplanes = await Promise.all(clocks.map((clock, index) => connect({ prefix, clock }, index)));
  return {
    backplanes,
    tagStore: (index) => backplanes[index]!.tagStore,
    // IDs the application chooses get their ownership record in the background.
    settle: () => new Promise((resolve) => setTimeout(resolve, 30)),
    loseLease: (index) => void (skews[index] = 2 * DEFAULT_LEASE_TTL),
    givenSockets,
    cleanup: async () => {
      await Promise.all(backplanes.map((backplane) => backplane.close()));
      await deleteKeys(redis.connection, prefix);
      await release?.();
    },
  };
}
