import amqp, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BackplaneError, claimCommitted, Controller, InvalidArgumentError, MemoryTagStore, type Backplane } from '../../src/index.js';
import {
  consumeReplies,
  createReplyHandler,
  REQUEUE_HEADER,
  type AmqpLikeMessage,
  type AmqpMessage,
  type ConsumeRepliesOptions,
  type ReplyDecision,
} from '../../src/integrations/index.js';
import { AMQP_URL, listen, uniqueQueue } from '../helpers/servers.js';

interface Job {
  x: number;
  delayMs: number;
  /** How often the worker sends its answer (an at-least-once publisher). */
  copies?: number;
}
interface Answer {
  double: number;
}

let connection: ChannelModel;
let channel: Channel;
let queues: string[];
let cleanups: (() => Promise<unknown> | void)[];

beforeEach(async () => {
  connection = await amqp.connect(AMQP_URL);
  channel = await connection.createChannel();
  queues = [];
  cleanups = [];
});

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  const admin = await connection.createChannel();
  for (const queue of queues) await admin.deleteQueue(queue);
  await connection.close();
});

/** A reply queue whose rejected messages the broker moves to a dead-letter queue. */
async function replyQueues(): Promise<{ replies: string; dead: string }> {
  const replies = uniqueQueue('replies');
  const dead = uniqueQueue('dead');
  queues.push(replies, dead);
  await channel.assertQueue(dead);
  await channel.assertQueue(replies, { arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead } });
  return { replies, dead };
}

async function consume(controller: Controller<Job, Answer>, queue: string, options: ConsumeRepliesOptions<Answer> = {}) {
  const decisions: { decision: ReplyDecision<Answer>; message: AmqpMessage }[] = [];
  const consumer = await consumeReplies(channel, queue, controller, {
    ...options,
    onDecision: (decision, message) => decisions.push({ decision, message }),
  });
  cleanups.push(() => consumer.cancel());
  return { consumer, decisions };
}

/** The worker: answers `{ double: 2x }` on `replyTo` after the job's delay. */
async function startWorker(jobs: string): Promise<void> {
  const workerChannel = await connection.createChannel();
  await workerChannel.assertQueue(jobs);
  queues.push(jobs);
  const timers = new Set<NodeJS.Timeout>();
  const { consumerTag } = await workerChannel.consume(jobs, (message) => {
    if (message === null) return;
    const job = JSON.parse(message.content.toString()) as Job;
    const { correlationId, replyTo } = message.properties as { correlationId: string; replyTo: string };
    workerChannel.ack(message);
    const timer = setTimeout(() => {
      timers.delete(timer);
      for (let i = 0; i < (job.copies ?? 1); i++) {
        workerChannel.sendToQueue(replyTo, Buffer.from(JSON.stringify({ double: job.x * 2 })), { correlationId });
      }
    }, job.delayMs);
    timers.add(timer);
  });
  cleanups.push(async () => {
    for (const timer of timers) clearTimeout(timer);
    await workerChannel.cancel(consumerTag);
    await workerChannel.close();
  });
}

/** The HTTP front: publishes a job per request and answers the worker's reply, or 504. */
async function startApp(controller: Controller<Job, Answer>, jobs: string, replies: string, timeout: number) {
  const app = await listen(async (request, response) => {
    const params = new URL(request.url!, 'http://x').searchParams;
    const job: Job = { x: Number(params.get('x')), delayMs: Number(params.get('delay') ?? 0), copies: Number(params.get('copies') ?? 1) };
    let correlationId = '';
    const result = await controller.synchronize({ timeout }, (xc) => {
      ({ correlationId } = xc.registerRequest({ message: job }));
      channel.sendToQueue(jobs, Buffer.from(JSON.stringify(job)), { correlationId, replyTo: replies });
    });
    response.setHeader('x-correlation-id', correlationId);
    if (result.status !== 'completed') {
      response.writeHead(504).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result.entries[0]!.response));
  });
  cleanups.push(() => app.close());
  return app;
}

async function setUp(timeout = 2_000, options: ConsumeRepliesOptions<Answer> = {}) {
  const controller = new Controller<Job, Answer>();
  cleanups.push(() => controller.close());
  const { replies, dead } = await replyQueues();
  const jobs = uniqueQueue('jobs');
  await startWorker(jobs);
  const app = await startApp(controller, jobs, replies, timeout);
  const { consumer, decisions } = await consume(controller, replies, options);
  return { controller, replies, dead, jobs, app, consumer, decisions };
}

async function messageCount(queue: string): Promise<number> {
  return (await channel.checkQueue(queue)).messageCount;
}

describe('consumeReplies on RabbitMQ', () => {
  it('routes the worker reply to the waiting HTTP handler and acknowledges it as delivered', async () => {
    const { app, decisions, replies } = await setUp();
    const response = await fetch(`${app.url}/?x=21`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ double: 42 });
    await vi.waitFor(() => expect(decisions).toHaveLength(1));
    expect(decisions[0]!.decision).toMatchObject({ action: 'ack', outcome: 'delivered', correlationId: response.headers.get('x-correlation-id'), payload: { double: 42 } });
    expect(await messageCount(replies)).toBe(0);
  });

  it('acknowledges a reply that came after the timeout as rolled back and compensates once', async () => {
    const compensate = vi.fn();
    // Two copies of the late reply: the second must be acknowledged without compensating again.
    const { app, decisions, replies, dead } = await setUp(100, { compensate });
    const response = await fetch(`${app.url}/?x=5&delay=400&copies=2`);
    expect(response.status).toBe(504);
    const correlationId = response.headers.get('x-correlation-id')!;
    await vi.waitFor(() => expect(decisions).toHaveLength(2));
    expect(decisions.map((d) => [d.decision.action, d.decision.outcome])).toEqual([
      ['ack', 'rolled-back'],
      ['ack', 'rolled-back'],
    ]);
    expect(decisions.map((d) => d.decision.compensated).sort()).toEqual([false, true]);
    expect(compensate).toHaveBeenCalledTimes(1);
    expect(compensate).toHaveBeenCalledWith({ double: 10 }, expect.objectContaining({ correlationId }));
    expect(await messageCount(replies)).toBe(0);
    expect(await messageCount(dead)).toBe(0);
  });

  it('acknowledges a redelivered reply as duplicate', async () => {
    const controller = new Controller<Job, Answer>();
    cleanups.push(() => controller.close());
    const { replies } = await replyQueues();
    const exchange = controller.createExchange();
    const { correlationId, response } = exchange.registerRequest({ message: { x: 1, delayMs: 0 } });
    channel.sendToQueue(replies, Buffer.from(JSON.stringify({ double: 2 })), { correlationId });

    // A first consumer routes the reply but dies before acknowledging it.
    const doomed = await connection.createChannel();
    const handle = createReplyHandler(controller);
    const first = await new Promise<ReplyDecision<Answer>>((resolve) => {
      void doomed.consume(replies, (message) => void handle(message!).then(resolve));
    });
    expect(first.outcome).toBe('delivered');
    await expect(response).resolves.toEqual({ double: 2 });
    await doomed.close();

    const { decisions } = await consume(controller, replies);
    await vi.waitFor(() => expect(decisions).toHaveLength(1));
    expect(decisions[0]!.message.fields.redelivered).toBe(true);
    expect(decisions[0]!.decision).toMatchObject({ action: 'ack', outcome: 'duplicate', correlationId });
    expect(await messageCount(replies)).toBe(0);
    exchange.close();
  });

  it('acknowledges a late reply whose work the worker claimed committed, without compensating', async () => {
    const compensate = vi.fn();
    const store = new MemoryTagStore();
    const controller = new Controller<Job, Answer>({ tagStore: store });
    cleanups.push(() => controller.close());
    const { replies } = await replyQueues();
    const exchange = controller.createExchange();
    const { correlationId } = exchange.registerRequest({ message: { x: 3, delayMs: 0 } });
    expect(await claimCommitted(store, correlationId)).toBe('won');
    exchange.close();
    expect((await exchange.wait()).committed).toEqual([correlationId]);
    channel.sendToQueue(replies, Buffer.from(JSON.stringify({ double: 6 })), { correlationId });
    const { decisions } = await consume(controller, replies, { compensate });
    await vi.waitFor(() => expect(decisions).toHaveLength(1));
    expect(decisions[0]!.decision).toMatchObject({ action: 'ack', outcome: 'committed', compensated: false });
    expect(compensate).not.toHaveBeenCalled();
    expect(await messageCount(replies)).toBe(0);
  });

  it('decides with exactly the fields it knows: no error on success, no correlation ID when there is none', async () => {
    const controller = new Controller<Job, Answer>();
    cleanups.push(() => controller.close());
    const handle = createReplyHandler(controller);
    const { correlationId } = controller.createExchange().registerRequest();
    const message = (id: string | undefined): AmqpLikeMessage => ({ content: Buffer.from('{"double":2}'), properties: { correlationId: id, headers: {} } });
    const delivered = await handle(message(correlationId));
    expect(delivered).toEqual({ action: 'ack', outcome: 'delivered', requeues: 0, correlationId, payload: { double: 2 }, compensated: false });
    expect(Object.keys(delivered)).toEqual(['action', 'outcome', 'requeues', 'correlationId', 'payload', 'compensated']);
    const invalid = await handle(message(undefined));
    expect(Object.keys(invalid)).toEqual(['action', 'outcome', 'requeues', 'compensated', 'error']);
    expect(invalid.error).toBeInstanceOf(InvalidArgumentError);
  });

  it('rejects malformed messages without requeue and keeps consuming', async () => {
    const { app, decisions, replies, dead } = await setUp();
    channel.sendToQueue(replies, Buffer.from('{"double": 1}')); // no correlation ID
    channel.sendToQueue(replies, Buffer.from('not json'), { correlationId: 'some-id' });
    channel.sendToQueue(replies, Buffer.from([0xff, 0xfe, 0x7b]), { correlationId: 'other-id' }); // not UTF-8
    await vi.waitFor(() => expect(decisions).toHaveLength(3));
    expect(decisions.map((d) => [d.decision.action, d.decision.outcome])).toEqual([
      ['reject', 'invalid'],
      ['reject', 'invalid'],
      ['reject', 'invalid'],
    ]);
    expect(decisions[0]!.decision.error).toBeInstanceOf(InvalidArgumentError);
    expect(decisions[1]!.decision.error).toBeInstanceOf(SyntaxError);
    expect(decisions[2]!.decision.error).toBeInstanceOf(TypeError);
    await vi.waitFor(async () => expect(await messageCount(dead)).toBe(3));

    const response = await fetch(`${app.url}/?x=4`);
    expect(await response.json()).toEqual({ double: 8 });
  });

  it('requeues an unmatched reply at most maxRequeues times, then dead-letters it', async () => {
    const { decisions, replies, dead } = await setUp(2_000, { unmatched: 'requeue', maxRequeues: 2 });
    channel.sendToQueue(replies, Buffer.from(JSON.stringify({ double: 0 })), { correlationId: 'nobody-owns-this' });
    await vi.waitFor(() => expect(decisions).toHaveLength(3));
    expect(decisions.map((d) => [d.decision.action, d.decision.requeues])).toEqual([
      ['requeue', 0],
      ['requeue', 1],
      ['dead-letter', 2],
    ]);
    await vi.waitFor(async () => expect(await messageCount(dead)).toBe(1));
    const deadLetter = (await channel.get(dead, { noAck: true })) as GetMessage;
    expect(deadLetter.properties.correlationId).toBe('nobody-owns-this');
    expect(deadLetter.properties.headers?.[REQUEUE_HEADER]).toBe(2);
    expect(await messageCount(replies)).toBe(0);
  });

  it('dead-letters an unmatched reply by default and acknowledges it under the drop policy', async () => {
    const first = await setUp();
    channel.sendToQueue(first.replies, Buffer.from('{}'), { correlationId: 'unknown-1' });
    await vi.waitFor(() => expect(first.decisions).toHaveLength(1));
    expect(first.decisions[0]!.decision).toMatchObject({ action: 'dead-letter', outcome: 'unmatched' });
    await vi.waitFor(async () => expect(await messageCount(first.dead)).toBe(1));

    const dropping = await setUp(2_000, { unmatched: 'drop' });
    channel.sendToQueue(dropping.replies, Buffer.from('{}'), { correlationId: 'unknown-2' });
    await vi.waitFor(() => expect(dropping.decisions).toHaveLength(1));
    expect(dropping.decisions[0]!.decision).toMatchObject({ action: 'drop', outcome: 'unmatched' });
    expect(await messageCount(dropping.replies)).toBe(0);
    expect(await messageCount(dropping.dead)).toBe(0);
  });

  it('requeues a late reply whose compensation failed, and compensates on the next delivery', async () => {
    const compensate = vi.fn().mockRejectedValueOnce(new Error('refund service down')).mockResolvedValue(undefined);
    const { app, decisions } = await setUp(100, { compensate });
    expect((await fetch(`${app.url}/?x=1&delay=300`)).status).toBe(504);
    await vi.waitFor(() => expect(decisions).toHaveLength(2));
    expect(decisions.map((d) => [d.decision.action, d.decision.outcome, d.decision.compensated])).toEqual([
      ['requeue', 'failed', false],
      ['ack', 'rolled-back', true],
    ]);
    expect(compensate).toHaveBeenCalledTimes(2);
  });

  it('requeues a reply whose backplane cannot tell the outcome, like the webhook answers 503, then dead-letters it', async () => {
    const unreachable: Backplane = {
      start: () => undefined,
      forward: () => Promise.reject(new BackplaneError('owner-unreachable', 'the owner did not answer in time')),
      close: () => undefined,
    };
    const controller = new Controller<Job, Answer>({ backplane: unreachable });
    cleanups.push(() => controller.close());
    const { replies, dead } = await replyQueues();
    const { decisions } = await consume(controller, replies, { maxRequeues: 1 });
    channel.sendToQueue(replies, Buffer.from('{"double": 2}'), { correlationId: 'owned-elsewhere' });
    await vi.waitFor(() => expect(decisions).toHaveLength(2));
    expect(decisions.map((d) => [d.decision.action, d.decision.outcome])).toEqual([
      ['requeue', 'failed'],
      ['dead-letter', 'failed'],
    ]);
    expect(decisions[0]!.decision.error).toBeInstanceOf(BackplaneError);
    await vi.waitFor(async () => expect(await messageCount(dead)).toBe(1));
  });

  it('turns a throwing onError into a warning, never an unhandled rejection', async () => {
    const { replies } = await replyQueues();
    const controller = new Controller<Job, Answer>();
    cleanups.push(() => controller.close());
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(() => void process.off('unhandledRejection', onUnhandled));
    const consumer = await consumeReplies(channel, replies, controller, {
      unmatched: 'drop',
      onDecision: () => {
        throw new Error('onDecision threw');
      },
      onError: () => {
        throw new Error('onError threw');
      },
    });
    cleanups.push(() => consumer.cancel());
    channel.sendToQueue(replies, Buffer.from('{}'), { correlationId: 'nobody' });
    expect((await warned).message).toMatch(/onError threw/);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(unhandled).toEqual([]);
  });

  it('waits for messages in flight when cancelled', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { app, consumer, decisions } = await setUp(50, { compensate: () => gate });
    expect((await fetch(`${app.url}/?x=1&delay=150`)).status).toBe(504);
    await vi.waitFor(() => expect(consumer.inFlight).toBe(1));
    const cancelled = consumer.cancel();
    let done = false;
    void cancelled.then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(done).toBe(false);
    release();
    await cancelled;
    expect(decisions.map((d) => d.decision.outcome)).toEqual(['rolled-back']);
  });
});

describe('consumeReplies acknowledgement modes', () => {
  it("batched: a turn's replies cost one ack frame, rejected ones are nacked on their own, and nothing is left unacknowledged", async () => {
    const controller = new Controller<Job, Answer>();
    cleanups.push(() => controller.close());
    const { replies, dead } = await replyQueues();
    const own = await connection.createChannel();
    await own.prefetch(100);
    const acks: [number, boolean | undefined][] = [];
    const ack = own.ack.bind(own);
    own.ack = (message, allUpTo) => {
      acks.push([message.fields.deliveryTag, allUpTo]);
      ack(message, allUpTo);
    };
    const exchange = controller.createExchange();
    const handles = Array.from({ length: 50 }, () => exchange.registerRequest());
    for (const [i, { correlationId }] of handles.entries()) {
      channel.sendToQueue(replies, Buffer.from(JSON.stringify({ double: i })), { correlationId });
      // Malformed among them: rejected, so dead-lettered, without holding back the others.
      if (i % 10 === 0) channel.sendToQueue(replies, Buffer.from('{not json'), { correlationId: `bad-${i}` });
    }
    const decisions: ReplyDecision<Answer>[] = [];
    const consumer = await consumeReplies(own, replies, controller, { acknowledge: 'batched', onDecision: (d) => void decisions.push(d) });
    const result = await exchange.wait();
    expect(result.complete).toBe(true);
    await vi.waitFor(() => expect(decisions).toHaveLength(55));
    await consumer.cancel();
    expect(decisions.filter((d) => d.action === 'reject')).toHaveLength(5);
    // Far fewer frames than replies, each acknowledging all up to it.
    expect(acks.length).toBeLessThan(20);
    expect(acks.every(([, allUpTo]) => allUpTo === true)).toBe(true);
    await own.close();
    expect(await messageCount(replies)).toBe(0);
    expect(await messageCount(dead)).toBe(5);
  });

  it('batched: a reply still being decided holds back the acknowledgement of those delivered after it, which the broker redelivers if the consumer dies', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const controller = new Controller<Job, Answer>();
    cleanups.push(() => controller.close());
    const { replies } = await replyQueues();
    const late = controller.createExchange();
    const lateId = late.registerRequest().correlationId;
    late.close();
    await late.wait();
    const open = controller.createExchange();
    const onTime = open.registerRequest();
    channel.sendToQueue(replies, Buffer.from(JSON.stringify({ double: 1 })), { correlationId: lateId });
    channel.sendToQueue(replies, Buffer.from(JSON.stringify({ double: 2 })), { correlationId: onTime.correlationId });
    const own = await connection.createChannel();
    const decisions: ReplyDecision<Answer>[] = [];
    await consumeReplies(own, replies, controller, { acknowledge: 'batched', compensate: () => gate, onDecision: (d) => void decisions.push(d) });
    await expect(onTime.response).resolves.toEqual({ double: 2 });
    await vi.waitFor(() => expect(decisions).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The second reply is delivered and decided, but its ack waits for the first.
    await own.close();
    release();
    expect(await messageCount(replies)).toBe(2);
  });

  it("none: consumes RabbitMQ's Direct Reply-to without a 406, and reports the decisions it cannot apply", async () => {
    const controller = new Controller<Job, Answer>();
    cleanups.push(() => controller.close());
    const jobs = uniqueQueue('jobs');
    await startWorker(jobs);
    const rpc = await connection.createChannel();
    const errors: unknown[] = [];
    rpc.on('error', (error) => void errors.push(error));
    const decisions: ReplyDecision<Answer>[] = [];
    const consumer = await consumeReplies(rpc, 'amq.rabbitmq.reply-to', controller, { acknowledge: 'none', onDecision: (d) => void decisions.push(d) });
    const answers = await Promise.all(
      [1, 2, 3].map((x) =>
        controller.request({ x, delayMs: 0 }, (correlationId, job) => {
          rpc.sendToQueue(jobs, Buffer.from(JSON.stringify(job)), { correlationId, replyTo: 'amq.rabbitmq.reply-to' });
        }),
      ),
    );
    expect(answers).toEqual([{ double: 2 }, { double: 4 }, { double: 6 }]);
    // A reply nobody waits for: dead-letter is decided, but there is nothing to nack.
    rpc.sendToQueue(jobs, Buffer.from(JSON.stringify({ x: 9, delayMs: 0 })), { correlationId: 'nobody-waits', replyTo: 'amq.rabbitmq.reply-to' });
    await vi.waitFor(() => expect(decisions.map((d) => d.action)).toContain('dead-letter'));
    await consumer.cancel();
    await rpc.close();
    expect(errors).toEqual([]);
  });

  it('refuses manual acknowledgement on Direct Reply-to, and a noAck that contradicts the mode', async () => {
    const controller = new Controller<Job, Answer>();
    cleanups.push(() => controller.close());
    await expect(consumeReplies(channel, 'amq.rabbitmq.reply-to', controller)).rejects.toThrow(/Direct Reply-to\) needs acknowledge: 'none'/);
    await expect(consumeReplies(channel, 'q', controller, { acknowledge: 'each', consumeOptions: { noAck: true } })).rejects.toThrow(InvalidArgumentError);
    await expect(consumeReplies(channel, 'q', controller, { acknowledge: 'sometimes' as never })).rejects.toThrow(/acknowledge must be one of each, batched, none/);
  });
});

describe('consumeReplies arguments', () => {
  it('throws InvalidArgumentError for noAck consumers, bad policies and unknown options', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const queue = uniqueQueue('args');
    queues.push(queue);
    await channel.assertQueue(queue);
    const bad: unknown[] = [{ consumeOptions: { noAck: true } }, { unmatched: 'requeue-forever' }, { maxRequeues: -1 }, { maxRequeue: 3 }];
    for (const options of bad) {
      await expect(consumeReplies(channel, queue, controller, options as ConsumeRepliesOptions<unknown>)).rejects.toMatchObject({
        name: 'InvalidArgumentError',
        code: 'ERR_RRXC_INVALID_ARGUMENT',
      });
    }
    await expect(consumeReplies(channel, '', controller)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

