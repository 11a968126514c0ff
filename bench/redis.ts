/**
 * Forwarding throughput and latency of rrxc/redis: two instances (two
 * controllers, each with its own Redis connections) on loopback, replies
 * registered on the instance that does not own them, against local routing
 * (replies registered on the owner) in the same run.
 *
 *   node --import tsx bench/redis.ts            # REDIS_URL or redis://127.0.0.1:6379
 *   RRXC_BENCH_REPLIES=200000 node --import tsx bench/redis.ts
 *   RRXC_BENCH_CONCURRENCY=16,64 RRXC_BENCH_PATHS=forwarded node --import tsx bench/redis.ts
 *   node --import tsx bench/redis.ts --processes   # the owner in a child process, as deployed
 *
 * Latency is that of `registerResponse` (reply in → outcome out), per reply;
 * throughput counts whole exchanges (create, register, reply, end).
 *
 * With `--processes` the owner A runs in a child process: it opens
 * exchanges in a closed loop and hands each correlation ID to this process
 * over IPC (batched per event-loop turn, standing in for the partner that
 * answers), where B registers the reply. Throughput is counted at A, latency
 * (B's `registerResponse`) here.
 */
import { fork } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Controller } from '../src/index.js';
import { REDIS_CHANNELS, RedisBackplane, type RedisErrorMessage } from '../src/redis/index.js';

const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const replies = Number(process.env['RRXC_BENCH_REPLIES'] ?? 100_000);
const concurrencies = (process.env['RRXC_BENCH_CONCURRENCY'] ?? '1,16,128,512').split(',').map(Number);
const paths = new Set((process.env['RRXC_BENCH_PATHS'] ?? 'forwarded,local,plain').split(','));
const role = process.env['RRXC_BENCH_ROLE'];
const processes = process.argv.includes('--processes');

// A failed background write (pending set, records, heartbeat) would make a row look faster than it is.
let backgroundFailures = 0;
subscribe(REDIS_CHANNELS.error, (message) => {
  if (backgroundFailures++ === 0) console.error('rrxc:redis:error', (message as RedisErrorMessage).error);
});

interface Figures {
  readonly name: string;
  readonly concurrency: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

function figures(name: string, concurrency: number, latencies: Float64Array, seconds: number): Figures {
  const count = latencies.length;
  latencies.sort();
  const at = (q: number): number => latencies[Math.min(count - 1, Math.floor(q * count))]!;
  return { name, concurrency, perSecond: count / seconds, p50: at(0.5), p99: at(0.99), max: latencies[count - 1]! };
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
  if (backgroundFailures > 0) throw new Error(`${name}: ${backgroundFailures} background writes failed`);
  return figures(name, concurrency, latencies, seconds);
}

/** Child process: the owner A. Opens `count` exchanges, `concurrency` at a time, and hands their IDs to the parent. */
async function ownerProcess(prefix: string): Promise<void> {
  const backplane = await RedisBackplane.connect({ url, prefix, instanceId: 'bench-owner' });
  const controller = new Controller({ backplane, tagStore: backplane.tagStore });
  let outbox: string[] = [];
  const hand = (id: string): void => {
    if (outbox.length === 0) setImmediate(() => (process.send!({ ids: outbox }), (outbox = [])));
    outbox.push(id);
  };
  process.on('message', (command: { count?: number; concurrency?: number; close?: true }) => {
    void (async () => {
      if (command.close) {
        await controller.close();
        process.send!({ closed: true });
        process.disconnect();
        return;
      }
      const count = command.count!;
      let next = 0;
      let unanswered = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          next++;
          const xc = controller.createExchange({ timeout: 30_000 });
          hand(xc.registerRequest().correlationId);
          if (!(await xc.wait()).complete) unanswered++;
        }
      };
      const started = performance.now();
      await Promise.all(Array.from({ length: command.concurrency! }, worker));
      process.send!({ done: true, seconds: (performance.now() - started) / 1000, unanswered: unanswered + backgroundFailures });
    })();
  });
  process.send!({ ready: true });
}

/** Command connections of our own, so that a row can wait until the writes of the one before reached Redis. */
function connection(): Redis {
  return new Redis(url, { enableAutoPipelining: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
}

async function inProcessRows(prefix: string): Promise<Figures[]> {
  const redisA = connection();
  const redisB = connection();
  const a = await RedisBackplane.connect({ redis: redisA, prefix });
  const b = await RedisBackplane.connect({ redis: redisB, prefix });
  // Local rows write pending-set batches faster than Redis takes them; the next row must not queue behind them.
  const drain = async (): Promise<void> => void (await Promise.all([redisA.ping(), redisB.ping()]));
  const ownerController = new Controller({ backplane: a, tagStore: a.tagStore });
  const viaController = new Controller({ backplane: b, tagStore: b.tagStore });
  const plain = new Controller();

  // Warm-up: JIT, script loading, connection buffers.
  await run('warm-up', ownerController, viaController, 5_000, 64);
  await run('warm-up', ownerController, ownerController, 5_000, 64);
  await drain();

  const rows: Figures[] = [];
  for (const concurrency of concurrencies) {
    const count = concurrency === 1 ? Math.min(replies, 5_000) : replies;
    if (paths.has('forwarded')) rows.push(await run('forwarded (B → A)', ownerController, viaController, count, concurrency));
    await drain();
    if (paths.has('local')) rows.push(await run('local, with backplane', ownerController, ownerController, count, concurrency));
    await drain();
    if (paths.has('plain')) rows.push(await run('local, no backplane', plain, plain, count, concurrency));
  }
  await Promise.all([ownerController.close(), viaController.close(), plain.close()]);
  redisA.disconnect();
  redisB.disconnect();
  return rows;
}

async function twoProcessRows(prefix: string): Promise<Figures[]> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, RRXC_BENCH_ROLE: 'owner', RRXC_BENCH_PREFIX: prefix },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const b = await RedisBackplane.connect({ url, prefix });
  const via = new Controller({ backplane: b, tagStore: b.tagStore });
  const messages: Record<string, unknown>[] = [];
  let latencies = new Float64Array(0);
  let received = 0;
  let failures = 0;
  let wake: (() => void) | undefined;
  child.on('message', (message: { ids?: string[] } & Record<string, unknown>) => {
    if (message.ids === undefined) {
      messages.push(message);
      wake?.();
      return;
    }
    for (const correlationId of message.ids) {
      const n = received++;
      const started = performance.now();
      void via.registerResponse({ correlationId, message: { n } }).then((outcome) => {
        latencies[n] = performance.now() - started;
        if (outcome !== 'delivered') failures++;
      });
    }
  });
  const next = async (key: string): Promise<Record<string, unknown>> => {
    for (;;) {
      const found = messages.findIndex((m) => key in m);
      if (found !== -1) return messages.splice(found, 1)[0]!;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  await next('ready');
  const round = async (count: number, concurrency: number): Promise<Figures> => {
    latencies = new Float64Array(count);
    received = 0;
    failures = 0;
    child.send({ count, concurrency });
    const done = (await next('done')) as { seconds: number; unanswered: number };
    if (failures > 0 || done.unanswered > 0) throw new Error(`two processes: ${failures} replies not delivered, ${done.unanswered} unanswered`);
    const row = figures('forwarded (B → A), two processes', concurrency, latencies, done.seconds);
    return row;
  };
  await round(5_000, 64); // warm-up
  const rows: Figures[] = [];
  for (const concurrency of concurrencies) rows.push(await round(concurrency === 1 ? Math.min(replies, 5_000) : replies, concurrency));
  child.send({ close: true });
  await next('closed');
  await once(child, 'exit');
  await via.close();
  return rows;
}

if (role === 'owner') {
  await ownerProcess(process.env['RRXC_BENCH_PREFIX']!);
} else {
  const prefix = `rrxc-bench:${process.pid}:${Date.now()}:`;
  const rows = processes ? await twoProcessRows(prefix) : await inProcessRows(prefix);
  const admin = new Redis(url);
  const info = (await admin.info('server')).match(/redis_version:(\S+)/)?.[1];
  let cursor = '0';
  do {
    const [nextCursor, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = nextCursor;
    if (keys.length > 0) await admin.del(...keys);
  } while (cursor !== '0');
  admin.disconnect();

  console.log(`rrxc/redis — ${replies} exchanges per row, ${processes ? 'owner in a child process' : 'both instances in one process'}, Node ${process.version}, Redis ${info} at ${url}\n`);
  console.log('| path | in flight | replies/s | p50 ms | p99 ms | max ms |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.concurrency} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.max.toFixed(1)} |`);
  }
}
