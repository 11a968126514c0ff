import { randomUUID } from 'node:crypto';
import { connect, ErrorCode, headers, NatsError, type Msg, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Controller, ExchangeEndedError, InvalidArgumentError, type ExchangeResult } from '../../src/index.js';
import type { ReplyDecision } from '../../src/integrations/index.js';
import {
  consumeNatsReplies,
  NATS_CORRELATION_HEADER,
  NATS_REQUEUE_HEADER,
  natsReplyFields,
  type ConsumeNatsRepliesOptions,
  type NatsReplyConsumer,
} from '../../src/nats/index.js';
import { startNatsServer, useNats, type TestNats } from '../helpers/nats-server.js';

interface Job {
  x: number;
  /** How long the worker takes. */
  delayMs?: number;
  /** How often the worker sends its answer (an at-least-once publisher). */
  copies?: number;
}
interface Answer {
  double: number;
}

let server: TestNats;
let nc: NatsConnection;
let cleanups: (() => Promise<unknown> | void)[];

beforeAll(async () => {
  server = await useNats();
});
afterAll(async () => {
  await server.stop();
});
beforeEach(async () => {
  nc = await connect({ servers: server.url });
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await nc.close();
});

/** Asserts that `failure` is how a request rejects whose exchange the consumer closed for the nats.js error `code`. */
function expectClosedBy(failure: unknown, code: ErrorCode): void {
  expect(failure).toBeInstanceOf(ExchangeEndedError);
  expect(failure).toMatchObject({ name: 'ExchangeEndedError', code: 'ERR_RRXC_EXCHANGE_ENDED', status: 'closed' });
  const cause = (failure as ExchangeEndedError).cause;
  expect(cause).toBeInstanceOf(NatsError);
  expect((cause as NatsError).code).toBe(code);
}

/** A subject no other test (or run) uses. */
const uniqueSubject = (label: string): string => `rrxc-test.${label}.${randomUUID()}`;

/** The worker: answers `{ double: 2x }` with `msg.respond()` after the job's delay, `copies` times. */
async function startWorker(subject: string, connection = nc): Promise<{ jobs: Msg[] }> {
  const jobs: Msg[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const sub = connection.subscribe(subject, {
    callback: (_, msg) => {
      jobs.push(msg);
      const job = msg.json<Job>();
      const answer = (): void => {
        for (let i = 0; i < (job.copies ?? 1); i++) msg.respond(JSON.stringify({ double: job.x * 2 }));
      };
      if (!job.delayMs) return answer();
      const timer = setTimeout(() => {
        timers.delete(timer);
        answer();
      }, job.delayMs);
      timers.add(timer);
    },
  });
  await connection.flush();
  cleanups.push(() => {
    for (const timer of timers) clearTimeout(timer);
    sub.unsubscribe();
  });
  return { jobs };
}

interface Setup {
  controller: Controller<Job, Answer>;
  consumer: NatsReplyConsumer<Job, Answer>;
  decisions: { decision: ReplyDecision<Answer>; message: Msg }[];
  jobs: string;
}

async function setUp(options: ConsumeNatsRepliesOptions<Job, Answer> = {}, connection = nc): Promise<Setup> {
  const controller = new Controller<Job, Answer>();
  cleanups.push(() => controller.close());
  const decisions: Setup['decisions'] = [];
  const consumer = await consumeNatsReplies(connection, controller, {
    ...options,
    onDecision: (decision, message) => decisions.push({ decision, message }),
  });
  cleanups.push(() => consumer.close());
  const jobs = uniqueSubject('jobs');
  await startWorker(jobs);
  return { controller, consumer, decisions, jobs };
}

/** The messages published to `subject` from now on, as a subscriber of it sees them. */
function seenOn(subject: string): Msg[] {
  const seen: Msg[] = [];
  const spy = nc.subscribe(subject, { callback: (_, msg) => seen.push(msg) });
  cleanups.push(() => spy.unsubscribe());
  return seen;
}

/** The recipe's exchange of several requests, each sent with `consumer.publish()`: asserts its three replies came, answers its result. */
async function publishThree(controller: Setup['controller'], consumer: Setup['consumer'], jobs: string): Promise<ExchangeResult<Job, Answer>> {
  const result = await controller.synchronize({ timeout: 5_000 }, (xc) => {
    for (const x of [1, 2, 3]) {
      const { correlationId } = xc.registerRequest({ message: { x } });
      consumer.publish(jobs, JSON.stringify({ x }), correlationId);
    }
  });
  expect(result.status).toBe('completed');
  expect(result.entries.map((e) => e.response)).toEqual([{ double: 2 }, { double: 4 }, { double: 6 }]);
  return result;
}

describe('consumeNatsReplies on a NATS server', () => {
  it('routes the worker reply to the waiting request and decides it delivered', async () => {
    const { consumer, decisions, jobs } = await setUp();
    await expect(consumer.request(jobs, { x: 21 })).resolves.toEqual({ double: 42 });
    await vi.waitFor(() => expect(decisions).toHaveLength(1));
    const [{ decision, message }] = decisions as [Setup['decisions'][number]];
    expect(decision).toMatchObject({ action: 'ack', outcome: 'delivered', payload: { double: 42 }, compensated: false });
    expect(message.subject).toBe(consumer.replyTo(decision.correlationId!));
  });

  it('publishes with the reply subject and no header, and routes the replies of an exchange of several requests', async () => {
    const { controller, consumer, jobs } = await setUp();
    const seen = seenOn(jobs);
    const result = await publishThree(controller, consumer, jobs);
    // The reply subject alone carries the ID: no header block unless asked for.
    expect(seen.map((m) => [m.reply, m.headers])).toEqual(result.entries.map((e) => [`${consumer.inbox}.${e.correlationId}`, undefined]));
    await expect(consumer.request(jobs, { x: 4 })).resolves.toEqual({ double: 8 });
    await vi.waitFor(() => expect(seen).toHaveLength(4));
    expect(seen[3]!.headers).toBeUndefined();
  });

  it('stamps the correlation header too with correlationHeader, or when the replies are read by a header', async () => {
    for (const options of [{ correlationHeader: true }, { header: NATS_CORRELATION_HEADER }]) {
      const { consumer, jobs } = await setUp(options);
      const seen = seenOn(jobs);
      const given = headers();
      given.set('Trace', 't-1');
      const id = `stamped-${randomUUID()}`;
      await consumer.request(jobs, { x: 1 }, { correlationId: id, headers: given, timeout: 5_000 }).catch(() => undefined);
      consumer.publish(jobs, JSON.stringify({ x: 2 }), `published-${randomUUID()}`);
      await vi.waitFor(() => expect(seen).toHaveLength(2));
      expect(seen[0]!.headers?.get(NATS_CORRELATION_HEADER)).toBe(id);
      expect(seen[0]!.headers?.get('Trace')).toBe('t-1');
      expect(seen[1]!.headers?.get(NATS_CORRELATION_HEADER)).toBe(seen[1]!.reply!.slice(consumer.inbox.length + 1));
      // The caller's headers are not changed.
      expect(given.has(NATS_CORRELATION_HEADER)).toBe(false);
    }
  });

  it('sends the headers it is given as they are, without the correlation header by default', async () => {
    const { consumer, jobs } = await setUp();
    const seen = seenOn(jobs);
    const given = headers();
    given.append('Trace', 't-2');
    await expect(consumer.request(jobs, { x: 5 }, { headers: given })).resolves.toEqual({ double: 10 });
    await expect(consumer.request(jobs, { x: 6 }, { headers: undefined, timeout: 5_000 } as never)).resolves.toEqual({ double: 12 });
    consumer.publish(jobs, JSON.stringify({ x: 7 }), 'published-with-headers', { headers: given });
    await vi.waitFor(() => expect(seen).toHaveLength(3));
    expect(seen.map((m) => [m.headers?.get('Trace'), m.headers?.has(NATS_CORRELATION_HEADER) ?? false])).toEqual([
      ['t-2', false],
      [undefined, false],
      ['t-2', false],
    ]);
  });

  it('routes requests to more subjects than the subject cache holds, and to a subject it has let go', async () => {
    const { consumer } = await setUp();
    const subjects = Array.from({ length: 300 }, (_, i) => `${uniqueSubject('many')}.n${i}`);
    const sub = nc.subscribe(`rrxc-test.many.>`, { callback: (_, msg) => msg.respond(JSON.stringify({ double: 2 * msg.json<Job>().x })) });
    cleanups.push(() => sub.unsubscribe());
    await nc.flush();
    const answers = await Promise.all(subjects.map((subject, x) => consumer.request(subject, { x }, { timeout: 5_000 })));
    expect(answers).toEqual(subjects.map((_, x) => ({ double: 2 * x })));
    await expect(consumer.request(subjects[0]!, { x: 1 }, { timeout: 5_000 })).resolves.toEqual({ double: 2 });
  });

  it('keeps the correlation header for a worker that answers elsewhere: the old recipe', async () => {
    const { controller, consumer, jobs } = await setUp({ correlationHeader: true });
    const seen = seenOn(jobs);
    const result = await publishThree(controller, consumer, jobs);
    expect(seen.map((m) => [m.reply, m.headers?.get(NATS_CORRELATION_HEADER)])).toEqual(
      result.entries.map((e) => [`${consumer.inbox}.${e.correlationId}`, e.correlationId]),
    );
  });

  it('decides a second copy of a reply duplicate', async () => {
    const { consumer, decisions, jobs } = await setUp();
    await expect(consumer.request(jobs, { x: 2, copies: 2 })).resolves.toEqual({ double: 4 });
    await vi.waitFor(() => expect(decisions).toHaveLength(2));
    expect(decisions.map((d) => [d.decision.action, d.decision.outcome])).toEqual([
      ['ack', 'delivered'],
      ['ack', 'duplicate'],
    ]);
  });

  it('decides a reply that came after the timeout rolled back, and compensates once for two copies', async () => {
    const compensate = vi.fn();
    const { controller, consumer, decisions, jobs } = await setUp({ compensate });
    const correlationId = 'late-1';
    const failure = await consumer.request(jobs, { x: 5, delayMs: 300, copies: 2 }, { timeout: 100, correlationId }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ExchangeEndedError);
    expect(failure).toMatchObject({ code: 'ERR_RRXC_EXCHANGE_ENDED', status: 'timed-out' });
    await vi.waitFor(() => expect(decisions).toHaveLength(2));
    expect(decisions.map((d) => [d.decision.action, d.decision.outcome])).toEqual([
      ['ack', 'rolled-back'],
      ['ack', 'rolled-back'],
    ]);
    expect(decisions.map((d) => d.decision.compensated).sort()).toEqual([false, true]);
    expect(compensate).toHaveBeenCalledTimes(1);
    expect(compensate).toHaveBeenCalledWith({ double: 10 }, expect.objectContaining({ correlationId }));
    expect(await controller.isRolledBack(correlationId)).toBe(true);
  });

  it('decides a reply nobody waits for unmatched, and a malformed one invalid, and keeps consuming', async () => {
    const { consumer, decisions, jobs } = await setUp();
    nc.publish(consumer.replyTo('nobody-owns-this'), JSON.stringify({ double: 0 }));
    nc.publish(consumer.replyTo('some-id'), 'not json');
    await vi.waitFor(() => expect(decisions).toHaveLength(2));
    // Decided in either order: the malformed one never reaches the controller.
    const [unmatched, invalid] = [...decisions].sort((a, b) => a.decision.correlationId!.localeCompare(b.decision.correlationId!)).map((d) => d.decision);
    expect(unmatched).toMatchObject({ action: 'dead-letter', outcome: 'unmatched', correlationId: 'nobody-owns-this' });
    expect(invalid).toMatchObject({ action: 'reject', outcome: 'invalid', correlationId: 'some-id' });
    expect(invalid!.error).toBeInstanceOf(SyntaxError);
    await expect(consumer.request(jobs, { x: 4 })).resolves.toEqual({ double: 8 });
  });

  it('republishes a late reply whose compensation failed with the requeue count, and compensates on its return', async () => {
    const compensate = vi.fn().mockRejectedValueOnce(new Error('refund service down')).mockResolvedValue(undefined);
    const { consumer, decisions, jobs } = await setUp({ compensate });
    await expect(consumer.request(jobs, { x: 1, delayMs: 200 }, { timeout: 50 })).rejects.toBeInstanceOf(ExchangeEndedError);
    await vi.waitFor(() => expect(decisions).toHaveLength(2));
    expect(decisions.map((d) => [d.decision.action, d.decision.outcome, d.decision.requeues, d.decision.compensated])).toEqual([
      ['requeue', 'failed', 0, false],
      ['ack', 'rolled-back', 1, true],
    ]);
    expect(decisions[1]!.message.headers?.get(NATS_REQUEUE_HEADER)).toBe('1');
    expect(decisions[1]!.message.subject).toBe(decisions[0]!.message.subject);
    expect(compensate).toHaveBeenCalledTimes(2);
  });

  it('requeues at most maxRequeues times', async () => {
    const { consumer, decisions } = await setUp({ unmatched: 'requeue', maxRequeues: 2 });
    nc.publish(consumer.replyTo('nobody'), JSON.stringify({ double: 0 }));
    await vi.waitFor(() => expect(decisions).toHaveLength(3));
    expect(decisions.map((d) => [d.decision.action, d.decision.requeues])).toEqual([
      ['requeue', 0],
      ['requeue', 1],
      ['dead-letter', 2],
    ]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(decisions).toHaveLength(3);
  });

  it('reads the correlation ID from a header when told to', async () => {
    const { consumer, decisions } = await setUp();
    const controller = new Controller<Job, Answer>();
    cleanups.push(() => controller.close());
    const decided: ReplyDecision<Answer>[] = [];
    const other = await consumeNatsReplies(nc, controller, { header: NATS_CORRELATION_HEADER, onDecision: (decision) => decided.push(decision) });
    cleanups.push(() => other.close());
    const { correlationId, response } = controller.createExchange().registerRequest();
    const h = headers();
    h.set(NATS_CORRELATION_HEADER, correlationId);
    // A reply that does not come to <inbox>.<id>: only the header names it.
    nc.publish(other.replyTo('shared-reply-subject'), JSON.stringify({ double: 6 }), { headers: h });
    await expect(response).resolves.toEqual({ double: 6 });
    expect(decided).toMatchObject([{ outcome: 'delivered', correlationId }]);
    expect(decisions).toEqual([]);
    expect(consumer.inbox).not.toBe(other.inbox);
  });
});

describe('no responders', () => {
  it('rejects a request to a subject nobody subscribes to at once, with ExchangeEndedError caused by the NATS 503, and tags the ID', async () => {
    const { controller, consumer } = await setUp();
    const correlationId = 'nobody-listens-1';
    const started = performance.now();
    const failure = await consumer.request(uniqueSubject('nobody'), { x: 1 }, { timeout: 10_000, correlationId }).catch((error: unknown) => error);
    expect(performance.now() - started).toBeLessThan(1_000);
    expectClosedBy(failure, ErrorCode.NoResponders);
    expect(await controller.isRolledBack(correlationId)).toBe(true);
    expect(controller.openExchanges).toBe(0);
  });

  it('ends the whole exchange of a published request with no responders, its other requests tagged too', async () => {
    const { controller, consumer, decisions, jobs } = await setUp();
    const result = await controller.synchronize({ timeout: 10_000 }, (xc) => {
      const slow = xc.registerRequest({ message: { x: 1, delayMs: 300 } });
      consumer.publish(jobs, JSON.stringify({ x: 1, delayMs: 300 }), slow.correlationId);
      const lost = xc.registerRequest({ message: { x: 2 } });
      consumer.publish(uniqueSubject('nobody'), JSON.stringify({ x: 2 }), lost.correlationId);
    });
    expect(result.status).toBe('closed');
    expect(result.durationMs).toBeLessThan(1_000);
    expect((result.reason as NatsError).code).toBe(ErrorCode.NoResponders);
    expect(result.unanswered).toEqual(result.entries.map((e) => e.correlationId));
    // The reply to the one that was sent comes later, and is rolled back.
    await vi.waitFor(() => expect(decisions.map((d) => d.decision.outcome)).toEqual(['rolled-back']));
  });

  it('takes a no-responders status for an ID no exchange holds as nothing: no decision, no error', async () => {
    const errors: unknown[] = [];
    const { controller, consumer, decisions } = await setUp({ onError: (error) => errors.push(error) });
    nc.publish(uniqueSubject('nobody'), '', { reply: consumer.replyTo('ended-long-ago') });
    await nc.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(decisions).toEqual([]);
    expect(errors).toEqual([]);
    expect(controller.openExchanges).toBe(0);
  });
});

describe('closing the consumer', () => {
  it('waits for replies in flight, then leaves no subscription on the inbox', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { consumer, decisions, jobs } = await setUp({ compensate: () => gate });
    await expect(consumer.request(jobs, { x: 1, delayMs: 100 }, { timeout: 20 })).rejects.toBeInstanceOf(ExchangeEndedError);
    await vi.waitFor(() => expect(consumer.inFlight).toBe(1));
    let done = false;
    const closed = consumer.close().then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(done).toBe(false);
    release();
    await closed;
    expect(decisions.map((d) => d.decision.outcome)).toEqual(['rolled-back']);
    expect(consumer.close()).toBe(consumer.close());
    // Nobody subscribes to the inbox any more: the server answers no responders.
    await expect(nc.request(consumer.replyTo('after-close'), '', { timeout: 1_000 })).rejects.toMatchObject({ code: ErrorCode.NoResponders });
  });

  it('decides a failed compensation dead-letter instead of requeueing it while close() runs', async () => {
    let fail!: (error: Error) => void;
    const compensate = vi.fn(() => new Promise<void>((_, reject) => (fail = reject)));
    const { consumer, decisions, jobs } = await setUp({ compensate });
    const seen = seenOn(`${consumer.inbox}.*`);
    await nc.flush();
    await expect(consumer.request(jobs, { x: 1, delayMs: 100 }, { timeout: 20 })).rejects.toBeInstanceOf(ExchangeEndedError);
    await vi.waitFor(() => expect(compensate).toHaveBeenCalledTimes(1));
    const closed = consumer.close();
    fail(new Error('refund service down'));
    await closed;
    expect(decisions.map((d) => d.decision)).toMatchObject([{ action: 'dead-letter', outcome: 'failed', requeues: 0 }]);
    await nc.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toHaveLength(1); // the worker's reply, not republished
    expect(compensate).toHaveBeenCalledTimes(1);
  });

  it('decides an unmatched reply that arrives while draining dead-letter under the requeue policy', async () => {
    const { consumer, decisions } = await setUp({ unmatched: 'requeue' });
    const seen = seenOn(`${consumer.inbox}.*`);
    await nc.flush();
    // Sent before the unsubscribe on the same connection: the server delivers it while close() drains.
    nc.publish(consumer.replyTo('nobody'), JSON.stringify({ double: 0 }));
    await consumer.close();
    expect(decisions.map((d) => d.decision)).toMatchObject([{ action: 'dead-letter', outcome: 'unmatched', requeues: 0 }]);
    await nc.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toHaveLength(1);
  });

  it('refuses to publish once closed', async () => {
    const { consumer, jobs } = await setUp();
    await consumer.close();
    expect(() => consumer.publish(jobs, '{}', 'some-id')).toThrow(InvalidArgumentError);
    await expect(consumer.request(jobs, { x: 1 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('closes when the connection closed first', async () => {
    const connection = await connect({ servers: server.url });
    const controller = new Controller<Job, Answer>();
    cleanups.push(() => controller.close());
    const errors: unknown[] = [];
    const consumer = await consumeNatsReplies(connection, controller, { onError: (e) => errors.push(e) });
    await connection.close();
    await consumer.close();
    expect(errors).toEqual([]);
  });

  it('leaves no timer or socket behind once the consumer, the controller and the connection are closed', async () => {
    const count = (resource: string): number => process.getActiveResourcesInfo().filter((r) => r === resource).length;
    const [timers, sockets] = [count('Timeout'), count('TCPSocketWrap')];
    const connection = await connect({ servers: server.url });
    const controller = new Controller<Job, Answer>();
    const consumer = await consumeNatsReplies(connection, controller);
    const jobs = uniqueSubject('jobs');
    await startWorker(jobs, connection);
    await expect(consumer.request(jobs, { x: 3 })).resolves.toEqual({ double: 6 });
    await expect(consumer.request(uniqueSubject('nobody'), { x: 3 })).rejects.toBeInstanceOf(ExchangeEndedError);
    await expect(consumer.request(jobs, { x: 3, delayMs: 200 }, { timeout: 10 })).rejects.toBeInstanceOf(ExchangeEndedError);
    await consumer.close();
    await controller.close();
    await cleanups.pop()!(); // the worker's timers
    await connection.close();
    await vi.waitFor(() => expect(count('TCPSocketWrap')).toBeLessThanOrEqual(sockets));
    expect(count('Timeout')).toBeLessThanOrEqual(timers);
  });
});

describe('when the connection closes', () => {
  /** A consumer on a connection of its own, and the failure its request of a slow job ends with. */
  async function requestThenClose(close: (connection: NatsConnection) => Promise<unknown>, url = server.url) {
    const connection = await connect({ servers: url, reconnect: false });
    const { controller, consumer, jobs } = await setUp({}, connection);
    const worker = await startWorker(jobs, connection);
    const correlationId = `cut-off-${randomUUID()}`;
    const started = performance.now();
    const failure = consumer.request(jobs, { x: 1, delayMs: 5_000 }, { timeout: 10_000, correlationId }).catch((error: unknown) => error);
    await vi.waitFor(() => expect(worker.jobs).toHaveLength(1));
    await close(connection);
    return { controller, consumer, jobs, correlationId, failure: await failure, elapsed: performance.now() - started };
  }

  it('rejects a waiting request at once with ExchangeEndedError caused by the NATS CONNECTION_CLOSED, and tags the ID', async () => {
    const { controller, correlationId, failure, elapsed } = await requestThenClose((connection) => connection.close());
    expect(elapsed).toBeLessThan(1_000);
    expectClosedBy(failure, ErrorCode.ConnectionClosed);
    expect(await controller.isRolledBack(correlationId)).toBe(true);
    expect(controller.openExchanges).toBe(0);
  });

  it('rejects a waiting request at once when the server goes away', async () => {
    const own = await startNatsServer();
    cleanups.push(() => own.stop());
    const { controller, correlationId, failure, elapsed } = await requestThenClose(async (connection) => {
      await own.stop();
      await connection.closed();
    }, own.url);
    expect(elapsed).toBeLessThan(1_000);
    expectClosedBy(failure, ErrorCode.ConnectionClosed);
    expect(await controller.isRolledBack(correlationId)).toBe(true);
  });

  it('closes every exchange waiting on the consumer, one given a replyTo() too, and none of another consumer', async () => {
    const connection = await connect({ servers: server.url });
    const { controller, consumer, jobs } = await setUp({}, connection);
    await startWorker(jobs);
    const other = await setUp();
    const published = controller.createExchange({ timeout: 10_000 });
    const { correlationId, response } = published.registerRequest({ message: { x: 1, delayMs: 5_000 } });
    const sibling = published.registerRequest({ message: { x: 2 } });
    consumer.publish(jobs, JSON.stringify({ x: 1, delayMs: 5_000 }), correlationId);
    const elsewhere = controller.createExchange({ timeout: 10_000 });
    consumer.replyTo(elsewhere.registerRequest().correlationId);
    const untouched = other.controller.createExchange({ timeout: 10_000 });
    other.consumer.replyTo(untouched.registerRequest().correlationId);
    const answered = await consumer.request(jobs, { x: 3 });
    await connection.close();
    const results = await Promise.all([published.wait(), elsewhere.wait()]);
    expect(results.map((r) => [r.status, (r.reason as NatsError).code])).toEqual([
      ['closed', ErrorCode.ConnectionClosed],
      ['closed', ErrorCode.ConnectionClosed],
    ]);
    expect(results[0]!.unanswered).toEqual([correlationId, sibling.correlationId]);
    await expect(response).rejects.toBeInstanceOf(ExchangeEndedError);
    expect(answered).toEqual({ double: 6 });
    expect(untouched.state).toBe('open');
    untouched.close();
  });

  it('closes the exchanges still waiting past many ended ones, an exchange given between others\' requests too', async () => {
    const connection = await connect({ servers: server.url });
    const { controller, consumer, jobs } = await setUp({}, connection);
    await startWorker(jobs, connection);
    const open = [controller.createExchange({ timeout: 10_000 }), controller.createExchange({ timeout: 10_000 })];
    // Hundreds of answered requests, enough for several sweeps of the ended ones, each open exchange given again among them.
    for (let round = 0; round < 4; round++) {
      for (const exchange of open) consumer.replyTo(exchange.registerRequest().correlationId);
      await Promise.all(Array.from({ length: 100 }, (_, x) => consumer.request(jobs, { x })));
    }
    await connection.close();
    const results = await Promise.all(open.map((exchange) => exchange.wait()));
    expect(results.map((r) => [r.status, (r.reason as NatsError).code, r.unanswered.length])).toEqual([
      ['closed', ErrorCode.ConnectionClosed, 4],
      ['closed', ErrorCode.ConnectionClosed, 4],
    ]);
    expect(controller.openExchanges).toBe(0);
  });

  it('refuses publish and request afterwards with InvalidArgumentError caused by CONNECTION_CLOSED, before any exchange opens', async () => {
    const connection = await connect({ servers: server.url });
    const { controller, consumer, jobs } = await setUp({}, connection);
    await connection.close();
    const { correlationId } = controller.createExchange().registerRequest();
    let thrown: unknown;
    try {
      consumer.publish(jobs, '{}', correlationId);
    } catch (error) {
      thrown = error;
    }
    const rejected = await consumer.request(jobs, { x: 1 }, { correlationId: 'never-sent' }).catch((error: unknown) => error);
    for (const error of [thrown, rejected]) {
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ code: 'ERR_RRXC_INVALID_ARGUMENT', cause: { code: ErrorCode.ConnectionClosed } });
    }
    expect(await controller.isRolledBack('never-sent')).toBe(false);
    expect(controller.openExchanges).toBe(1);
  });
});

describe('consumeNatsReplies reports', () => {
  it('turns a throwing onDecision and a throwing onError into a warning, never an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(() => void process.off('unhandledRejection', onUnhandled));
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    const controller = new Controller<Job, Answer>();
    cleanups.push(() => controller.close());
    const consumer = await consumeNatsReplies(nc, controller, {
      onDecision: () => {
        throw new Error('onDecision threw');
      },
      onError: () => {
        throw new Error('onError threw');
      },
    });
    cleanups.push(() => consumer.close());
    nc.publish(consumer.replyTo('x'), '{}');
    expect((await warned).message).toMatch(/onError threw/);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(unhandled).toEqual([]);
  });

  it('tells onError what onDecision threw, and the message', async () => {
    const controller = new Controller<Job, Answer>();
    cleanups.push(() => controller.close());
    const errors: [unknown, Msg | undefined][] = [];
    const consumer = await consumeNatsReplies(nc, controller, {
      onDecision: () => {
        throw new Error('onDecision threw');
      },
      onError: (error, message) => errors.push([error, message]),
    });
    cleanups.push(() => consumer.close());
    nc.publish(consumer.replyTo('x'), '{}');
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect((errors[0]![0] as Error).message).toBe('onDecision threw');
    expect(errors[0]![1]?.subject).toBe(consumer.replyTo('x'));
  });
});

describe('consumeNatsReplies options', () => {
  it("passes createReplyHandler's options on: unmatched, maxRequeues, overwrite", async () => {
    const { consumer, controller, decisions } = await setUp({ unmatched: 'drop', overwrite: true });
    nc.publish(consumer.replyTo('nobody'), JSON.stringify({ double: 0 }));
    await vi.waitFor(() => expect(decisions).toHaveLength(1));
    expect(decisions[0]!.decision).toMatchObject({ action: 'drop', outcome: 'unmatched' });
    const exchange = controller.createExchange();
    const { correlationId } = exchange.registerRequest();
    exchange.registerRequest(); // keeps the exchange open after the first reply
    for (const double of [1, 2]) nc.publish(consumer.replyTo(correlationId), JSON.stringify({ double }));
    await vi.waitFor(() => expect(decisions).toHaveLength(3));
    expect(decisions.slice(1).map((d) => d.decision.outcome)).toEqual(['delivered', 'overwritten']);
    expect(exchange.getResponse(correlationId)).toEqual({ double: 2 });
    exchange.close();
  });

  it('reads the payload with getPayload and the correlation ID with getCorrelationId when given', async () => {
    const { consumer, controller, decisions } = await setUp({
      getPayload: (message) => ({ double: Number(message.string()) }),
      getCorrelationId: (message) => message.headers?.get('Partner-Ref'),
    });
    const { correlationId, response } = controller.createExchange().registerRequest();
    const h = headers();
    h.set('Partner-Ref', correlationId);
    nc.publish(consumer.replyTo('not-the-id'), '7', { headers: h });
    await expect(response).resolves.toEqual({ double: 7 });
    expect(decisions.map((d) => d.decision)).toMatchObject([{ outcome: 'delivered', correlationId }]);
  });
});

describe('consumeNatsReplies arguments', () => {
  it('rejects a bad connection, controller, inbox or option with InvalidArgumentError', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const bad: [unknown, unknown, unknown][] = [
      [{}, controller, undefined],
      [nc, {}, undefined],
      [nc, controller, 'options'],
      [nc, controller, { inbox: '_INBOX.*' }],
      [nc, controller, { inbox: '' }],
      [nc, controller, { inbox: 'a..b' }],
      [nc, controller, { onDecision: 1 }],
      [nc, controller, { onError: 'warn' }],
      [nc, controller, { encode: {} }],
      [nc, controller, { queue: 'q' }],
      // The consumer writes the requeue count; a getRequeues of one's own could not bound the requeues.
      [nc, controller, { getRequeues: () => 0 }],
      [nc, controller, { header: 'with space' }],
      [nc, controller, { correlationHeader: 'yes' }],
      [nc, controller, { header: NATS_CORRELATION_HEADER, getCorrelationId: () => 'id' }],
      [nc, controller, { getPayload: 'json' }],
      [nc, controller, { unmatched: 'bounce' }],
      [nc, controller, { maxRequeues: -1 }],
      [nc, controller, { compensate: true }],
      [nc, controller, { compensatedTag: '' }],
    ];
    for (const args of bad) {
      await expect((consumeNatsReplies as (...a: unknown[]) => Promise<unknown>)(...args), JSON.stringify(args[2])).rejects.toMatchObject({
        name: 'InvalidArgumentError',
        code: 'ERR_RRXC_INVALID_ARGUMENT',
      });
    }
  });

  it('subscribes nothing when an option is bad', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const inbox = uniqueSubject('inbox');
    await expect(consumeNatsReplies(nc, controller, { inbox, maxRequeues: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nc.request(`${inbox}.x`, '', { timeout: 1_000 })).rejects.toMatchObject({ code: ErrorCode.NoResponders });
  });

  it('refuses a correlation ID or subject NATS cannot carry, before any exchange opens', async () => {
    const { controller, consumer, jobs } = await setUp();
    for (const id of ['a.b', 'a*', '>', 'with space', '']) expect(() => consumer.replyTo(id)).toThrow(InvalidArgumentError);
    expect(() => consumer.publish('jobs.*', '{}', 'id')).toThrow(InvalidArgumentError);
    expect(() => consumer.publish(jobs, '{}', 'id', { header: 1 } as never)).toThrow(InvalidArgumentError);
    await expect(consumer.request(jobs, { x: 1 }, { correlationId: 'a.b' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(consumer.request('', { x: 1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    // A subject checked once is still checked against the next, whatever it is.
    await expect(consumer.request(jobs, { x: 1 })).resolves.toEqual({ double: 2 });
    for (const subject of ['jobs.>', 'a..b', '.a', 'a.', 'a b', undefined, 1, { toString: () => jobs }]) {
      await expect(consumer.request(subject as never, { x: 1 }), String(subject)).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(() => consumer.publish(subject as never, '{}', 'id'), String(subject)).toThrow(InvalidArgumentError);
    }
    await expect(consumer.request(jobs, { x: 1 }, { headers: 'Trace: 1' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(() => consumer.publish(jobs, '{}', 'id', { headers: {} as never })).toThrow(InvalidArgumentError);
    expect(controller.openExchanges).toBe(0);
    expect(await controller.isRolledBack('a.b')).toBe(false);
  });

  it('rejects a bad header name for natsReplyFields', () => {
    expect(() => natsReplyFields({ header: 'with space' })).toThrow(InvalidArgumentError);
    expect(() => natsReplyFields({ header: 'a:b' })).toThrow(InvalidArgumentError);
    expect(() => natsReplyFields({ heading: 'x' } as never)).toThrow(InvalidArgumentError);
  });
});
