// The Redis variants: BullMQ's own request/reply (Queue.add +
// job.waitUntilFinished), a hand-rolled client over lists, rrxc over lists
// as examples/calculator wires it (createReplyHandler), and rrxc with
// RedisBackplane — two instances in this process, the reply landing on
// the one that waits, or on the other one, which forwards it.
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { Controller } from '../../../src/index.js';
import { createReplyHandler } from '../../../src/integrations/index.js';
import { RedisBackplane } from '../../../src/redis/index.js';
import { TIMEOUT_MS, URLS, type Echo } from '../config.js';
import { popLoop, redisOptions, type ListJob, type ListReply } from '../redis-lists.js';
import type { BrokerSetup, Variant, VariantInfo } from '../variant.js';
import { Pending } from './hand-rolled.js';

/** The run's names on Redis; every key starts with the run ID, so one SCAN removes them all. */
export function redisNames(runId: string): { bullPrefix: string; bullQueue: string; jobsList: string } {
  return { bullPrefix: `${runId}:bull`, bullQueue: 'echo', jobsList: `${runId}:jobs` };
}

const INFO = {
  bullmq: {
    broker: 'redis',
    name: 'BullMQ',
    role: 'peer',
    wiring: "BullMQ 6: `queue.add('echo', data, { removeOnComplete: 1000, removeOnFail: 1000 })` + `job.waitUntilFinished(queueEvents, 30 000)`; the echo process runs a `Worker` with `concurrency` = the most callers of the run",
  },
  handRolled: {
    broker: 'redis',
    name: 'hand-rolled lists',
    role: 'hand-rolled',
    wiring: 'ioredis: LPUSH the job (id, replyTo, body) on the jobs list, BRPOP (+ RPOP count) the own reply list, Map of id (randomUUID) → {resolve, timer}, setTimeout per request',
  },
  rrxc: {
    broker: 'redis',
    name: 'rrxc lists',
    role: 'rrxc',
    wiring: 'rrxc as examples/calculator wires lists: the same LPUSH / BRPOP loop, replies through `createReplyHandler` (getCorrelationId, getPayload, getRequeues), `controller.request(message, send)`',
  },
  local: {
    broker: 'redis',
    name: 'rrxc backplane, same instance',
    role: 'backplane-local',
    wiring: 'rrxc lists with `RedisBackplane.connect()` as the README shows (backplane + its tagStore), two instances in this process; the reply goes to the list of the instance that waits',
  },
  forwarded: {
    broker: 'redis',
    name: 'rrxc backplane, other instance',
    role: 'backplane-forwarded',
    wiring: "the same two instances; instance A asks, the job names instance B's reply list, B's reply handler calls `registerResponse`, the backplane forwards it to A",
  },
} as const satisfies Record<string, VariantInfo>;

/** A caller's end of the lists: a connection for pushes, one for its blocking pops, its reply list. */
interface ListEnd {
  readonly replyKey: string;
  push(job: ListJob): Promise<unknown>;
  /** Re-queues a reply on the own list (rrxc's bounded requeue). */
  pushReply(reply: ListReply): Promise<unknown>;
  close(): Promise<void>;
}

function listEnd(jobsList: string, replyKey: string, onReply: (raw: string, end: ListEnd) => void): ListEnd {
  // ioredis defaults, as the calculator example uses them: a caller does not tune its client for a benchmark.
  const commands = new Redis(URLS.redis);
  const pops = new Redis(URLS.redis);
  const stopped = new AbortController();
  let closed: Promise<void> | undefined;
  const end: ListEnd = {
    replyKey,
    push: (job) => commands.lpush(jobsList, JSON.stringify(job)),
    pushReply: (reply) => commands.lpush(replyKey, JSON.stringify(reply)),
    close: () =>
      (closed ??= (async () => {
        stopped.abort();
        pops.disconnect();
        await popping.catch(() => undefined);
        await commands.del(replyKey);
        await commands.quit();
      })()),
  };
  const popping = popLoop(pops, replyKey, (raw) => onReply(raw, end), stopped.signal);
  // A failed pop loop must be seen, not just leave its callers waiting for their timeouts.
  popping.catch((error: unknown) => console.error(`pop loop on ${replyKey} failed`, error));
  return end;
}

async function bullmq(names: ReturnType<typeof redisNames>): Promise<Variant> {
  const connection = redisOptions(URLS.redis);
  const queue = new Queue(names.bullQueue, { connection, prefix: names.bullPrefix });
  const events = new QueueEvents(names.bullQueue, { connection, prefix: names.bullPrefix });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  // waitUntilFinished adds a 'closing' listener to the queue per waiting job:
  // 128 callers are 128 listeners, which is BullMQ's design, not a leak.
  queue.setMaxListeners(1024);
  return {
    ...INFO.bullmq,
    async call(message) {
      // Keeping the last 1 000 finished jobs rather than none: waitUntilFinished
      // looks the job up once after subscribing, and a job removed the moment it
      // completed would read as missing.
      const job = await queue.add('echo', message, { removeOnComplete: 1000, removeOnFail: 1000 });
      return (await job.waitUntilFinished(events, TIMEOUT_MS)) as Echo;
    },
    async close() {
      await events.close();
      await queue.close();
    },
  };
}

function handRolled(runId: string, jobsList: string): Variant {
  const pending = new Pending<Echo>();
  const end = listEnd(jobsList, `${runId}:replies:hand-rolled`, (raw) => {
    const reply = JSON.parse(raw) as ListReply;
    pending.settle(reply.id, reply.body as Echo);
  });
  return {
    ...INFO.handRolled,
    call(message) {
      const id = randomUUID();
      const reply = pending.wait(id);
      end.push({ id, replyTo: end.replyKey, body: message }).catch((error: unknown) => pending.fail(id, error));
      return reply;
    },
    async close() {
      pending.rejectAll(new Error('closed'));
      await end.close();
    },
  };
}

/** An rrxc instance on lists: its controller, its reply list, replies routed by createReplyHandler as in examples/calculator. */
interface ListInstance {
  readonly controller: Controller<Echo, Echo>;
  readonly end: ListEnd;
  /** Replies that were not acknowledged (requeued, dead-lettered): none is expected. */
  readonly troubles: () => number;
}

function listInstance(controller: Controller<Echo, Echo>, jobsList: string, replyKey: string): ListInstance {
  const handle = createReplyHandler<Echo, Partial<ListReply>>(controller, {
    getCorrelationId: (reply) => reply.id,
    getPayload: (reply) => reply.body as Echo,
    getRequeues: (reply) => reply.requeues ?? 0,
  });
  let troubles = 0;
  const end = listEnd(jobsList, replyKey, (raw, own) => {
    const reply = JSON.parse(raw) as ListReply;
    void handle(reply).then((decision) => {
      if (decision.action === 'ack') return;
      troubles++;
      if (decision.action === 'requeue') void own.pushReply({ ...reply, requeues: decision.requeues + 1 });
    });
  });
  return { controller, end, troubles: () => troubles };
}

function rrxcVariant(info: VariantInfo, asker: ListInstance, replier: ListInstance): Variant {
  const { controller, end } = asker;
  const send = (id: string, body: Echo): Promise<unknown> => end.push({ id, replyTo: replier.end.replyKey, body });
  return {
    ...info,
    call: (message) => controller.request(message, send),
    async close() {
      // The instances are closed by the set-up's cleanup: A serves two variants.
      if (asker.troubles() + replier.troubles() > 0) throw new Error(`${info.name}: ${asker.troubles() + replier.troubles()} replies not acknowledged`);
    },
  };
}

export async function setupRedis(runId: string): Promise<BrokerSetup> {
  const names = redisNames(runId);
  const admin = new Redis(URLS.redis);
  const server = `Redis ${(await admin.info('server')).match(/redis_version:(\S+)/)?.[1] ?? '?'}`;

  const plain = listInstance(new Controller<Echo, Echo>({ timeout: TIMEOUT_MS }), names.jobsList, `${runId}:replies:rrxc`);
  const backplanes = await Promise.all([0, 1].map(() => RedisBackplane.connect({ url: URLS.redis, prefix: `${runId}:bp:` })));
  const [a, b] = backplanes.map((backplane, i) =>
    listInstance(new Controller<Echo, Echo>({ backplane, tagStore: backplane.tagStore, timeout: TIMEOUT_MS }), names.jobsList, `${runId}:replies:instance-${'ab'[i]}`),
  ) as [ListInstance, ListInstance];
  const instances = [plain, a, b];
  const variants: Variant[] = [
    await bullmq(names),
    handRolled(runId, names.jobsList),
    rrxcVariant(INFO.rrxc, plain, plain),
    rrxcVariant(INFO.local, a, a),
    rrxcVariant(INFO.forwarded, a, b),
  ];
  return {
    broker: 'redis',
    server,
    variants,
    skipped: [],
    async cleanup() {
      // The rrxc instances outlive their variants (two variants share A): closed here, once.
      for (const instance of instances) {
        await instance.end.close();
        await instance.controller.close();
      }
      let cursor = '0';
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${runId}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await admin.del(...keys);
      } while (cursor !== '0');
      await admin.quit();
    },
  };
}
