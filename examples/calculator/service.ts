import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Controller, ControllerClosedError } from '../../src/index.js';
import { RedisBackplane } from '../../src/redis/index.js';
import { describeJob, parseJob, type Answer, type Job } from './calculator.js';
import { createRedisListTransport } from './redis-list-transport.js';
import { ReplyRing } from './reply-ring.js';
import { createReplyStats, type ReplyStats } from './reply-stats.js';
import { createAmqpTransport, createInProcessTransport, type Transport, type TransportOptions } from './transport.js';

/** How long a request waits for the worker by default, in ms. */
export const DEFAULT_TIMEOUT = 1_000;
/**
 * The upper bound of the worker's random delay by default, in ms: well under
 * {@link DEFAULT_TIMEOUT}, so that ordinary requests are answered. A job's
 * own `delay` (`/calc?…&delay=1500`) is the way to be too late on purpose.
 */
export const DEFAULT_MAX_DELAY = 250;

/** Options of {@link start}. */
export interface CalculatorOptions {
  /** TCP port; `0` picks a free one. Default 3000. */
  readonly port?: number;
  /** Interface to listen on. Default `127.0.0.1`. */
  readonly host?: string;
  /** How long a request waits for the worker, in ms. Default {@link DEFAULT_TIMEOUT}. */
  readonly timeout?: number;
  /**
   * Upper bound of the worker's random delay, in ms, for jobs without a
   * `delay` of their own. Default {@link DEFAULT_MAX_DELAY}; one at or above
   * `timeout` makes ordinary requests time out at random (the start-up log says so).
   */
  readonly maxDelay?: number;
  /** RabbitMQ URL; absent: in-process queues (or, with `redisUrl`, Redis lists). */
  readonly amqpUrl?: string;
  /** The jobs queue on RabbitMQ. Default `rrxc-calculator-jobs`. */
  readonly jobsQueue?: string;
  /**
   * Redis URL: run as one of several instances joined by a Redis backplane.
   * Jobs go through a Redis list shared by every instance (or, with
   * `amqpUrl` too, the RabbitMQ jobs queue), answers to a reply list (or
   * queue) of each instance's own — and every other answer, starting with
   * the first, to another running instance's (reply-ring.ts), whose
   * backplane forwards it to the instance waiting for it.
   */
  readonly redisUrl?: string;
  /** Head of the Redis keys, the same on every instance. Default `rrxc-calculator`. */
  readonly redisPrefix?: string;
  /** Where log lines go. Default `console.log`. */
  readonly log?: (line: string) => void;
}

/** A running calculator service. */
export interface Calculator {
  /** `http://host:port`. */
  readonly url: string;
  readonly port: number;
  /** `in-process`, `amqp` or `redis-list`. */
  readonly transport: string;
  /** The set-up in words, for the start-up line: `in-process queue`, `RabbitMQ`, `Redis backplane, a reply list per instance`, … */
  readonly mode: string;
  /** This instance's name on the Redis backplane; absent without `redisUrl`. */
  readonly instanceId?: string;
  /** The replies this instance consumed, and those it forwarded to the instance waiting for them. */
  readonly replies: ReplyStats;
  /** The other running instances this one sends every other answer to; empty without `redisUrl`, or alone. */
  readonly others: readonly string[];
  readonly controller: Controller<Job, Answer>;
  /** Stops accepting, ends waiting requests (503), stops the worker and the consumers, disconnects. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the calculator: `GET /calc?op=add&a=1&b=2` (or `POST /calc` with a
 * JSON body) publishes the job and waits, through rrxc, for the worker's
 * answer: 200 with the result, 504 when the worker is too late, 422 for a
 * job that has no result, 400 for a bad one.
 */
export async function start(options: CalculatorOptions = {}): Promise<Calculator> {
  const { port = 3000, host = '127.0.0.1', timeout = DEFAULT_TIMEOUT, maxDelay = DEFAULT_MAX_DELAY, log = console.log } = options;
  if (maxDelay >= timeout) log(`worker delays go up to ${maxDelay} ms, the timeout is ${timeout} ms: some ordinary requests will time out`);
  const { amqpUrl, redisUrl, jobsQueue = 'rrxc-calculator-jobs', redisPrefix = 'rrxc-calculator' } = options;
  const backplane = redisUrl === undefined ? undefined : await RedisBackplane.connect({ url: redisUrl, prefix: `${redisPrefix}:` });
  const controller = new Controller<Job, Answer>(backplane === undefined ? { timeout } : { timeout, backplane, tagStore: backplane.tagStore });
  const replies = createReplyStats(backplane?.instanceId, log);
  const transportOptions: TransportOptions = { maxDelay, log, onDecision: replies.onDecision };
  let transport: Transport;
  let mode: string;
  try {
    if (amqpUrl !== undefined) {
      transport = await createAmqpTransport(controller, { ...transportOptions, url: amqpUrl, jobsQueue });
      mode = backplane === undefined ? 'RabbitMQ' : 'RabbitMQ, a reply queue per instance, Redis backplane';
    } else if (backplane !== undefined) {
      transport = await createRedisListTransport(controller, { ...transportOptions, url: redisUrl!, prefix: redisPrefix, instanceId: backplane.instanceId });
      mode = 'Redis backplane, a reply list per instance';
    } else {
      transport = createInProcessTransport(controller, transportOptions);
      mode = 'in-process queue';
    }
  } catch (error) {
    // Also closes the backplane and its connections.
    await controller.close();
    throw error;
  }
  let ring: ReplyRing | undefined;
  if (backplane !== undefined) {
    try {
      ring = await ReplyRing.join({ url: redisUrl!, key: `${redisPrefix}:reply-ring`, instanceId: backplane.instanceId, replyTo: transport.replyTo, log });
    } catch (error) {
      await controller.close();
      await transport.close();
      throw error;
    }
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      log(`unexpected error: ${error instanceof Error ? error.stack : String(error)}`);
      if (!response.headersSent) send(response, 500, { error: 'internal error' });
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://calculator');
    if (url.pathname !== '/calc') return send(response, 404, { error: 'try GET /calc?op=add&a=1&b=2' });
    if (request.method !== 'GET' && request.method !== 'POST') return send(response, 405, { error: 'GET or POST' });

    let job: Job;
    try {
      job = parseJob(request.method === 'GET' ? Object.fromEntries(url.searchParams) : await readJson(request));
    } catch (error) {
      return send(response, 400, { error: error instanceof Error ? error.message : String(error) });
    }

    // A client that hangs up stops the wait: its reply will be rolled back.
    const gone = new AbortController();
    const onClose = (): void => {
      if (!response.writableFinished) gone.abort(new Error('the client closed the connection'));
    };
    response.once('close', onClose);

    let correlationId = '';
    let result;
    try {
      result = await controller.synchronize({ signal: gone.signal }, (xc) => {
        ({ correlationId } = xc.registerRequest({ message: job }));
        transport.publish(job, correlationId, ring?.next());
      });
    } catch (error) {
      if (error instanceof ControllerClosedError) return send(response, 503, { error: 'shutting down' });
      throw error;
    }

    const entry = result.entries[0];
    if (result.status === 'completed' && entry?.response !== undefined) {
      const answer = entry.response;
      if ('error' in answer) return send(response, 422, { job: describeJob(job), error: answer.error });
      return send(response, 200, { job: describeJob(job), result: answer.value, ms: entry.latencyMs });
    }
    if (result.status === 'timed-out') {
      return send(response, 504, { job: describeJob(job), error: `the worker did not answer within ${timeout} ms`, correlationId });
    }
    if (result.status === 'closed') return send(response, 503, { error: 'shutting down' });
    // aborted: the client is gone, nobody to answer.
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch(async (error: unknown) => {
    await ring?.leave();
    await controller.close();
    await transport.close();
    throw error;
  });
  const { port: actualPort } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`,
    port: actualPort,
    transport: transport.name,
    mode,
    ...(backplane === undefined ? {} : { instanceId: backplane.instanceId }),
    replies: replies.stats,
    get others() {
      return ring?.others ?? [];
    },
    controller,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // First, so that the others stop sending answers here.
        await ring?.leave();
        // Waiting requests end as `closed` and are answered 503 before the sockets go.
        // With a backplane this also closes it and the connections it made.
        await controller.close(new Error('the service is shutting down'));
        await transport.close();
        if (backplane !== undefined) log(replies.summary());
        // The 503s are out by now; their keep-alive sockets are idle.
        server.closeIdleConnections();
        const grace = setTimeout(() => server.closeAllConnections(), 2_000);
        await closed;
        clearTimeout(grace);
      })();
      return closing;
    },
  };
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 4_096) throw new Error('the body is larger than 4 KiB');
    chunks.push(chunk);
  }
  const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('the body must be a JSON object');
  return value as Record<string, unknown>;
}
