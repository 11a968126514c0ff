// Echo worker for the Redis variants (a child process of the runner): a
// BullMQ Worker on the run's queue, returning the job's data, and a list
// worker popping the run's jobs list and pushing each body back to the
// reply list the job names. Stopping, it deletes every key of the run.
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { URLS } from './config.js';
import { echoEnv, serveUntilStopped } from './echo-lifecycle.js';
import { popLoop, redisOptions, type ListJob, type ListReply } from './redis-lists.js';

const runKeys = echoEnv('RRXC_E2E_RUN_KEYS');
const prefix = echoEnv('RRXC_E2E_BULL_PREFIX');
const queueName = echoEnv('RRXC_E2E_BULL_QUEUE');
const jobsKey = echoEnv('RRXC_E2E_JOBS_LIST');
const concurrency = Number(echoEnv('RRXC_E2E_MAX_CONCURRENCY'));

// BullMQ's Worker processes one job at a time by default: with that, 128
// callers would measure the worker, not the client. Its documented
// `concurrency` lets it keep up with the most callers the run has.
const bull = new Worker(queueName, async (job) => job.data as unknown, {
  connection: { ...redisOptions(URLS.redis), maxRetriesPerRequest: null },
  prefix,
  concurrency,
});
await bull.waitUntilReady();

// Replies leave on a connection of their own, pipelined per event-loop turn: the worker should never be the bottleneck.
const pushes = new Redis(URLS.redis, { enableAutoPipelining: true });
const pops = new Redis(URLS.redis);
const stopped = new AbortController();
const popping = popLoop(
  pops,
  jobsKey,
  (raw) => {
    const job = JSON.parse(raw) as ListJob;
    void pushes.lpush(job.replyTo, JSON.stringify({ id: job.id, body: job.body } satisfies ListReply));
  },
  stopped.signal,
);

serveUntilStopped(async () => {
  stopped.abort();
  pops.disconnect();
  await popping;
  await bull.close();
  // The runner removes the run's keys; should it have crashed, this is the only clean-up there is.
  let cursor = '0';
  do {
    const [next, keys] = await pushes.scan(cursor, 'MATCH', runKeys, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await pushes.del(...keys);
  } while (cursor !== '0');
  await pushes.quit();
});
