import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Controller } from '../../src/index.js';
import { createReplyHandler } from '../../src/integrations/index.js';
import type { Answer, Job } from './calculator.js';
import { compensate, reportDecision, type Transport, type TransportOptions } from './transport.js';
import { Worker } from './worker.js';

export interface RedisListTransportOptions extends TransportOptions {
  readonly url: string;
  /** Head of the list names, the same on every instance: `<prefix>:jobs`, `<prefix>:dead-letters`, `<prefix>:replies:<instanceId>`. */
  readonly prefix: string;
  /** This instance's name on the backplane: its reply list is `<prefix>:replies:<instanceId>`. */
  readonly instanceId: string;
}

/** A job on `<prefix>:jobs`. */
interface JobMessage {
  readonly correlationId: string;
  /** The list the answer goes to. */
  readonly replyTo: string;
  readonly job: Job;
}

/** An answer on an instance's reply list. */
interface ReplyMessage {
  readonly correlationId: string;
  readonly answer: Answer;
  /** How often it was put back; the reply handler's bound reads it. */
  readonly requeues: number;
}

/** Seconds a blocking pop waits before it asks again: bounds how long a stalled loop goes unnoticed. */
const POP_TIMEOUT = 5;
/** Dead letters kept for inspection; older ones are trimmed. */
const MAX_DEAD_LETTERS = 1_000;

/**
 * Jobs on a Redis list shared by every instance, replies on a list of each
 * instance's own: each instance's worker pops jobs from `<prefix>:jobs` and
 * pushes the answer (with its correlation ID) to the reply list the job
 * names, and each instance pops replies from `<prefix>:replies:<instanceId>`.
 * A job may name another instance's list (see reply-ring.ts): the reply
 * then lands on an instance that is not waiting for it, whose backplane
 * forwards it to the one that is, and answers with that instance's outcome.
 *
 * Three connections of its own: a blocking pop holds its connection, so
 * the jobs loop and the replies loop each need one, and pushes use a third.
 */
export async function createRedisListTransport(controller: Controller<Job, Answer>, options: RedisListTransportOptions): Promise<Transport> {
  const { url, prefix, instanceId, maxDelay, log } = options;
  const jobsKey = `${prefix}:jobs`;
  const repliesKey = `${prefix}:replies:${instanceId}`;
  const deadLettersKey = `${prefix}:dead-letters`;

  const connections = [0, 1, 2].map(() => new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true }));
  let reported = false;
  for (const connection of connections) {
    connection.on('error', (error: Error) => {
      // ioredis reports every failed reconnect; one line per outage is enough.
      if (!reported) log(`redis list transport: ${error.message}`);
      reported = true;
    });
    connection.on('ready', () => (reported = false));
  }
  const [commands, jobsConnection, repliesConnection] = connections as [Redis, Redis, Redis];
  try {
    await Promise.all(connections.map((connection) => connection.connect()));
  } catch (error) {
    for (const connection of connections) connection.disconnect();
    throw error;
  }

  const stopped = new AbortController();
  const push = (key: string, value: string): void => {
    commands.rpush(key, value).catch((error: unknown) => log(`could not push to ${key}: ${error instanceof Error ? error.message : String(error)}`));
  };

  const worker = new Worker(maxDelay);
  const onJob = (raw: string): void => {
    let message: JobMessage;
    try {
      message = JSON.parse(raw) as JobMessage;
    } catch {
      return push(deadLettersKey, raw);
    }
    worker.handle(message.job, (answer) => {
      push(message.replyTo, JSON.stringify({ correlationId: message.correlationId, answer, requeues: 0 } satisfies ReplyMessage));
    });
  };

  // The transport-agnostic reply handler, applied to Redis lists.
  const handle = createReplyHandler<Answer, Partial<ReplyMessage> | undefined>(controller, {
    getCorrelationId: (message) => message?.correlationId,
    getPayload: (message) => {
      if (message?.answer === undefined) throw new Error('the reply has no answer');
      return message.answer;
    },
    getRequeues: (message) => message?.requeues ?? 0,
    compensate: compensate(log),
  });
  const handling = new Set<Promise<void>>();
  const onReply = (raw: string): void => {
    let message: Partial<ReplyMessage> | undefined;
    try {
      message = JSON.parse(raw) as Partial<ReplyMessage>;
    } catch {
      message = undefined;
    }
    const done = handle(message).then((decision) => {
      reportDecision(options, decision);
      if (decision.action === 'requeue') push(repliesKey, JSON.stringify({ ...message, requeues: decision.requeues + 1 }));
      else if (decision.action === 'dead-letter' || decision.action === 'reject') {
        commands
          .multi()
          .lpush(deadLettersKey, raw)
          .ltrim(deadLettersKey, 0, MAX_DEAD_LETTERS - 1)
          .exec()
          .catch(() => undefined);
      }
    });
    handling.add(done);
    void done.finally(() => handling.delete(done));
  };

  async function consume(connection: Redis, key: string, onMessage: (raw: string) => void): Promise<void> {
    while (!stopped.signal.aborted) {
      let popped: [string, string] | null;
      try {
        popped = await connection.blpop(key, POP_TIMEOUT);
      } catch (error) {
        if (stopped.signal.aborted) return;
        log(`popping ${key} failed: ${error instanceof Error ? error.message : String(error)}; again in 1 s`);
        await sleep(1_000, undefined, { signal: stopped.signal }).catch(() => undefined);
        continue;
      }
      if (popped !== null) onMessage(popped[1]);
    }
  }
  const loops = [consume(jobsConnection, jobsKey, onJob), consume(repliesConnection, repliesKey, onReply)];

  return {
    name: 'redis-list',
    replyTo: repliesKey,
    publish(job, correlationId, replyTo = repliesKey) {
      push(jobsKey, JSON.stringify({ correlationId, replyTo, job } satisfies JobMessage));
    },
    async close() {
      if (stopped.signal.aborted) return;
      stopped.abort();
      worker.stop();
      // Ends the blocking pops at once: they reject with "Connection is closed", which the loops expect now.
      jobsConnection.disconnect();
      repliesConnection.disconnect();
      await Promise.all(loops);
      // Replies being routed may still requeue or dead-letter: let them push before the last connection goes.
      await Promise.allSettled([...handling]);
      // Nobody pops this instance's reply list any more: what is left on it is dropped with it.
      await commands.del(repliesKey).catch(() => undefined);
      await commands.quit().catch(() => commands.disconnect());
    },
  };
}
