/**
 * What the one decision per ID costs at the store: a rollback claim against
 * the tag write it replaced, and the compensate-once claim against the
 * look-up and write it replaced, in memory and in Redis, side by side in one
 * run (medians of the rounds).
 *
 *   node --import tsx bench/claims.ts           # REDIS_URL or redis://127.0.0.1:6379
 *   RRXC_BENCH_ROUNDS=7 node --import tsx bench/claims.ts
 *
 * Memory: ns per operation over 200 000 fresh IDs. Redis: µs per operation,
 * one at a time (each a round trip), over 3 000 fresh IDs; keys are removed
 * afterwards.
 */
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { MemoryTagStore } from '../src/index.js';
import { RedisTagStore } from '../src/redis/index.js';

const rounds = Number(process.env['RRXC_BENCH_ROUNDS'] ?? 5);
const MEMORY_IDS = 200_000;
const REDIS_IDS = 3_000;

type Measure = () => Promise<number>;

/** ns per operation of `op` over fresh IDs on a fresh store. */
function inMemory(op: (store: MemoryTagStore, id: string) => unknown): Measure {
  return async () => {
    const store = new MemoryTagStore({ maxTags: MEMORY_IDS });
    const ids = Array.from({ length: MEMORY_IDS }, (_, i) => `id-${i}`);
    const start = process.hrtime.bigint();
    for (const id of ids) op(store, id);
    return Number(process.hrtime.bigint() - start) / MEMORY_IDS;
  };
}

let fresh = 0;
/** µs per operation of `op`, awaited one at a time over fresh IDs. */
function inRedis(op: (id: string) => Promise<unknown>): Measure {
  return async () => {
    const base = `${fresh++}-`;
    const start = process.hrtime.bigint();
    for (let i = 0; i < REDIS_IDS; i++) await op(base + i);
    return Number(process.hrtime.bigint() - start) / REDIS_IDS / 1_000;
  };
}

const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const prefix = `rrxc-bench-claims:${process.pid}:`;
const store = new RedisTagStore({ redis, prefix });

const rows: [label: string, unit: string, measure: Measure][] = [
  ['memory: rollback tag written (before)', 'ns', inMemory((s, id) => s.tag(id, 'rollback', 60_000))],
  ['memory: rollback claimed against committed (now)', 'ns', inMemory((s, id) => s.claim(id, 'rollback', 60_000, ['committed']))],
  ['redis: rollback tag written (before)', 'µs', inRedis((id) => store.tag(`t${id}`, 'rollback', 60_000))],
  ['redis: rollback claimed against committed (now)', 'µs', inRedis((id) => store.claim(`c${id}`, 'rollback', 60_000, ['committed']))],
  [
    'redis: compensate once, look-up then tag (before)',
    'µs',
    inRedis(async (id) => {
      await store.getTags(`l${id}`);
      await store.tag(`l${id}`, 'compensated', 60_000);
    }),
  ],
  ['redis: compensate once, one claim (now)', 'µs', inRedis((id) => store.claim(`o${id}`, 'compensated', 60_000, []))],
];

try {
  const load = loadavg().map((l) => l.toFixed(2)).join(' / ');
  const samples = rows.map((): number[] => []);
  // Interleaved: each round measures every row once, so drift hits them all alike.
  for (let round = 0; round < rounds; round++) for (const [i, [, , measure]] of rows.entries()) samples[i]!.push(await measure());
  console.log(`claims: ${rounds} rounds, medians; load average ${load} at the start, ${loadavg().map((l) => l.toFixed(2)).join(' / ')} at the end`);
  for (const [i, [label, unit]] of rows.entries()) console.log(`${label.padEnd(52)} ${median(samples[i]!).toFixed(unit === 'ns' ? 0 : 1).padStart(8)} ${unit}/op`);
} finally {
  for (let cursor = '0'; ; ) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    if (keys.length > 0) await redis.del(...keys);
    if ((cursor = next) === '0') break;
  }
  await redis.quit();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
