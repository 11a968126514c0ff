/**
 * Forwarding throughput and latency of rrxc/redis: two instances (two
 * controllers, each with its own Redis connections) on loopback, replies
 * registered on the instance that does not own them, against local routing
 * (replies registered on the owner) in the same run.
 *
 *   node --import tsx bench/redis.ts            # REDIS_URL or redis://127.0.0.1:6379
 *   RRXC_BENCH_REPLIES=200000 node --import tsx bench/redis.ts
 *
 * Latency is that of `registerResponse` (reply in → outcome out), per reply;
 * throughput counts whole exchanges (create, register, reply, end).
 */
import { Redis } from 'ioredis';
import { Controller } from '../src/index.js';
import { RedisBackplane } from '../src/redis/index.js';

const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const replies = Number(process.env['RRXC_BENCH_REPLIES'] ?? 100_000);
const prefix = `rrxc-bench:${process.pid}:${Date.now()}:`;

interface Figures {
  readonly name: string;
  readonly concurrency: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

async function run(name: string, owner: Controller, via: Controller, count: number, concurrency: number): Promise<Figures> {
  const latencies = new Float64Array(count);
  let next = 0;
  let failures = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = next++;
      const xc = owner.createExchange({ timeout: 30_000 });
      const { correlationId } = xc.registerRequest();
      const started = performance.now();
      const outcome = await via.registerResponse({ correlationId, message: { n } });
      latencies[n] = performance.now() - started;
      if (outcome !== 'delivered') failures++;
      await xc.wait();
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  if (failures > 0) throw new Error(`${name}: ${failures} replies not delivered`);
  latencies.sort();
  const at = (q: number): number => latencies[Math.min(count - 1, Math.floor(q * count))]!;
  return { name, concurrency, perSecond: count / seconds, p50: at(0.5), p99: at(0.99), max: latencies[count - 1]! };
}

const a = await RedisBackplane.connect({ url, prefix });
const b = await RedisBackplane.connect({ url, prefix });
const ownerController = new Controller({ backplane: a, tagStore: a.tagStore });
const viaController = new Controller({ backplane: b, tagStore: b.tagStore });
const plain = new Controller();

// Warm-up: JIT, script loading, connection buffers.
await run('warm-up', ownerController, viaController, 5_000, 64);
await run('warm-up', ownerController, ownerController, 5_000, 64);

const rows: Figures[] = [];
for (const concurrency of [1, 16, 128, 512]) {
  const count = concurrency === 1 ? Math.min(replies, 5_000) : replies;
  rows.push(await run('forwarded (B → A)', ownerController, viaController, count, concurrency));
  rows.push(await run('local, with backplane', ownerController, ownerController, count, concurrency));
  rows.push(await run('local, no backplane', plain, plain, count, concurrency));
}

await Promise.all([ownerController.close(), viaController.close(), plain.close()]);
const admin = new Redis(url);
const info = (await admin.info('server')).match(/redis_version:(\S+)/)?.[1];
let cursor = '0';
do {
  const [nextCursor, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
  cursor = nextCursor;
  if (keys.length > 0) await admin.del(...keys);
} while (cursor !== '0');
admin.disconnect();

console.log(`rrxc/redis — ${replies} exchanges per row, Node ${process.version}, Redis ${info} at ${url}\n`);
console.log('| path | in flight | replies/s | p50 ms | p99 ms | max ms |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.name} | ${r.concurrency} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.max.toFixed(1)} |`);
}
