import { createHmac } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Controller, InvalidArgumentError, type ExchangeResult } from '../../src/index.js';
import { createCallbackListener, fastifyExchange, fastifyWebhook, type CallbackAnswer, type FastifyWebhookOptions } from '../../src/integrations/index.js';
import { answerCases, CASE_BODY_LIMIT, EXPECTED_CASE_ANSWERS, rawPost, startPartner } from '../helpers/callbacks.js';
import { listen } from '../helpers/servers.js';

interface Charge {
  amount: number;
}
interface Receipt {
  status: 'charged';
  amount: number;
}

let cleanups: (() => Promise<unknown> | void)[];
beforeEach(() => {
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Starts a Fastify app on a free loopback port. */
async function serve(app: FastifyInstance): Promise<string> {
  cleanups.push(() => app.close());
  return app.listen({ port: 0, host: '127.0.0.1' });
}

/**
 * The application: `POST /pay {amount}` charges through a real partner and
 * answers with its callback, which arrives on `POST /callbacks/:id`;
 * `?delay=` and `?copies=` tell the partner when and how often to call back.
 */
async function startApp(options: { timeout?: number; webhook?: Partial<FastifyWebhookOptions<Receipt>> } = {}) {
  const rollbacks: ExchangeResult[] = [];
  const controller = new Controller<Charge, Receipt>({ onRollback: (_, result) => void rollbacks.push(result) });
  cleanups.push(() => controller.close());
  const partner = await startPartner();
  cleanups.push(() => partner.close());
  const answers: CallbackAnswer<Receipt>[] = [];
  const compensate = vi.fn();
  const errors: unknown[] = [];
  const ids: string[] = [];
  const app = Fastify();
  let base = '';
  await app.register(fastifyWebhook(controller, { compensate, onAnswer: (answer) => answers.push(answer), ...options.webhook }));
  app.post<{ Body: Charge; Querystring: { delay?: string; copies?: string } }>(
    '/pay',
    fastifyExchange(
      controller,
      async (xc, request: FastifyRequest<{ Body: Charge; Querystring: { delay?: string; copies?: string } }>) => {
        const { correlationId, response } = xc.registerRequest({ message: request.body });
        ids.push(correlationId);
        const call = {
          callbackUrl: `${base}/callbacks/${correlationId}`,
          delayMs: Number(request.query.delay ?? 10),
          copies: Number(request.query.copies ?? 1),
          body: JSON.stringify({ status: 'charged', amount: request.body.amount }),
        };
        const accepted = await fetch(partner.url, { method: 'POST', body: JSON.stringify(call), signal: xc.signal });
        expect(accepted.status).toBe(202);
        return response;
      },
      options.timeout === undefined ? undefined : { timeout: options.timeout },
    ),
  );
  app.setErrorHandler((error, _request, reply) => {
    errors.push(error);
    return reply.code(500).send({ error: 'handled by the app' });
  });
  base = await serve(app);
  return { controller, base, partner, answers, compensate, errors, ids, rollbacks };
}

const pay = (base: string, amount: number, query = '', signal?: AbortSignal): Promise<Response> =>
  fetch(`${base}/pay${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount }), ...(signal ? { signal } : {}) });

describe('fastifyExchange and fastifyWebhook on a real Fastify app', () => {
  it("answers the client with the partner's callback, which got 202", async () => {
    const { base, partner, answers } = await startApp();
    const response = await pay(base, 12);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({ status: 'charged', amount: 12 });
    await vi.waitFor(() => expect(partner.answered).toEqual([202]));
    expect(answers.map((a) => a.outcome)).toEqual(['delivered']);
  });

  it('answers 504 when the callback does not come in time; the late callback gets 410 and is compensated once', async () => {
    const { base, partner, compensate, ids, rollbacks } = await startApp({ timeout: 100 });
    const response = await pay(base, 7, '?delay=300&copies=2');
    expect(response.status).toBe(504);
    expect(await response.json()).toEqual({ status: 'timed-out' });
    expect(rollbacks.map((r) => r.status)).toEqual(['timed-out']);
    await vi.waitFor(() => expect(partner.answered).toEqual([410, 410]));
    expect(compensate).toHaveBeenCalledTimes(1);
    expect(compensate).toHaveBeenCalledWith({ status: 'charged', amount: 7 }, expect.objectContaining({ correlationId: ids[0] }));
  });

  it('aborts the exchange when the client disconnects, and tags its ID for rollback', async () => {
    const { base, controller, partner, ids, rollbacks, errors } = await startApp();
    const client = new AbortController();
    const paying = pay(base, 3, '?delay=300', client.signal);
    await vi.waitFor(() => expect(ids).toHaveLength(1));
    client.abort();
    await expect(paying).rejects.toThrow();
    await vi.waitFor(() => expect(rollbacks).toHaveLength(1));
    expect(rollbacks[0]).toMatchObject({ status: 'aborted', unanswered: ids, reason: expect.objectContaining({ name: 'AbortError' }) });
    expect(await controller.isRolledBack(ids[0]!)).toBe(true);
    expect(controller.openExchanges).toBe(0);
    await vi.waitFor(() => expect(partner.answered).toEqual([410]));
    expect(errors).toEqual([]);
  });

  it("hands an error of the operation to Fastify's error handler, after tagging the IDs it registered", async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const app = Fastify();
    const ids: string[] = [];
    const failure = new Error('the queue is down');
    app.get('/', fastifyExchange(controller, (xc) => {
      ids.push(xc.registerRequest().correlationId);
      throw failure;
    }));
    const handled: unknown[] = [];
    app.setErrorHandler((error, _request, reply) => {
      handled.push(error);
      return reply.code(502).send({ error: 'upstream' });
    });
    const response = await fetch(await serve(app));
    expect(response.status).toBe(502);
    expect(handled).toEqual([failure]);
    expect(await controller.isRolledBack(ids[0]!)).toBe(true);
  });

  it('answers 503 with retry-after when the controller closes while the client waits', async () => {
    const { base, controller, ids } = await startApp();
    const paying = pay(base, 1, '?delay=5000');
    await vi.waitFor(() => expect(ids).toHaveLength(1));
    await controller.close();
    const response = await paying;
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(await response.json()).toEqual({ status: 'closed' });
  });

  it('answers 204 to an operation that resolves with nothing, and leaves the answer to one that sent it', async () => {
    const controller = new Controller<unknown, string>();
    cleanups.push(() => controller.close());
    const app = Fastify();
    app.get('/nothing', fastifyExchange(controller, () => undefined));
    app.get('/itself', fastifyExchange(controller, async (xc, _request, reply: FastifyReply) => {
      const { correlationId, response } = xc.registerRequest();
      setTimeout(() => void controller.registerResponse({ correlationId, message: 'late enough' }), 5);
      await reply.code(201).type('text/plain').send(await response);
      return 'ignored';
    }));
    const base = await serve(app);
    expect((await fetch(`${base}/nothing`)).status).toBe(204);
    const itself = await fetch(`${base}/itself`);
    expect(itself.status).toBe(201);
    expect(await itself.text()).toBe('late enough');
  });

  it('lets onUnanswered answer a timed-out exchange', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const app = Fastify();
    app.get('/', fastifyExchange(controller, (xc) => xc.registerRequest().response, {
      timeout: 20,
      onUnanswered: (result, _request, reply: FastifyReply) => reply.code(504).type('application/problem+json').send(JSON.stringify({ title: result.status })),
    }));
    const response = await fetch(await serve(app));
    expect(response.status).toBe(504);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await response.json()).toEqual({ title: 'timed-out' });
  });

  it('leaves no timer and no listener behind once the exchanges ended', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const controller = new Controller<unknown, number>({ timeout: 10_000 });
    cleanups.push(() => controller.close());
    const signals: AbortSignal[] = [];
    const app = Fastify();
    app.get('/', fastifyExchange(controller, (xc) => {
      signals.push(xc.signal);
      const { correlationId, response } = xc.registerRequest();
      setImmediate(() => void controller.registerResponse({ correlationId, message: 1 }));
      return response;
    }));
    const base = await serve(app);
    const before = timers();
    for (let i = 0; i < 5; i++) expect(await (await fetch(base)).json()).toBe(1);
    expect(controller.openExchanges).toBe(0);
    expect(timers()).toBeLessThanOrEqual(before);
    for (const signal of signals) expect(getEventListeners(signal, 'abort')).toEqual([]);
  });
});

describe('fastifyWebhook', () => {
  it('answers every body-rule case as the node:http listener does', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const app = Fastify();
    await app.register(fastifyWebhook(controller, { maxBodySize: CASE_BODY_LIMIT }));
    const viaFastify = await answerCases(controller, `${await serve(app)}/callbacks`);
    const plain = await listen(createCallbackListener(controller, { maxBodySize: CASE_BODY_LIMIT, getCorrelationId: (req) => req.url?.split('/')[2] }));
    cleanups.push(() => plain.close());
    const viaNodeHttp = await answerCases(controller, `${plain.url}/callbacks`);
    expect(viaFastify).toEqual(EXPECTED_CASE_ANSWERS);
    expect(viaFastify).toEqual(viaNodeHttp);
  });

  it("keeps its raw-body parser to its route: the app's other routes still parse JSON, with their bodyLimit", async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const app = Fastify({ bodyLimit: 16 });
    await app.register(fastifyWebhook(controller, { path: '/hooks/:id' }));
    app.post('/echo', async (request) => ({ parsed: request.body }));
    const base = await serve(app);
    expect(await rawPost(`${base}/echo`, '{"a":1}', { 'content-type': 'application/json' })).toEqual({ status: 200, body: { parsed: { a: 1 } } });
    expect((await rawPost(`${base}/echo`, JSON.stringify({ a: 'x'.repeat(20) }), { 'content-type': 'application/json' })).status).toBe(413);
    const exchange = controller.createExchange();
    const { correlationId, response } = exchange.registerRequest();
    // Over the app's bodyLimit, within the webhook's maxBodySize.
    expect(await rawPost(`${base}/hooks/${correlationId}`, JSON.stringify({ a: 'x'.repeat(20) }), { 'content-type': 'application/json' })).toEqual({
      status: 202,
      body: { outcome: 'delivered' },
    });
    await expect(response).resolves.toEqual({ a: 'x'.repeat(20) });
  });

  it('checks a signature over the raw bytes with authorize', async () => {
    const secret = 'partner secret';
    const sign = (body: string): string => createHmac('sha256', secret).update(body).digest('hex');
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const app = Fastify();
    await app.register(fastifyWebhook(controller, { authorize: (request, body) => request.headers['x-signature'] === sign(body.toString()) }));
    const base = await serve(app);
    const exchange = controller.createExchange();
    const { correlationId, response } = exchange.registerRequest();
    // Spacing a JSON parser would not keep: the signature is over these bytes.
    const body = '{ "paid" :true }';
    const url = `${base}/callbacks/${correlationId}`;
    expect(await rawPost(url, body, { 'content-type': 'application/json', 'x-signature': sign('{}') })).toEqual({ status: 401, body: { outcome: 'unauthorized' } });
    expect((await rawPost(url, body, { 'content-type': 'application/json', 'x-signature': sign(body) })).status).toBe(202);
    await expect(response).resolves.toEqual({ paid: true });
  });

  it('reads the ID from the x-correlation-id header on a path without :id', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const app = Fastify();
    await app.register(fastifyWebhook(controller, { path: '/callbacks' }));
    const base = await serve(app);
    const exchange = controller.createExchange();
    const { correlationId, response } = exchange.registerRequest();
    expect((await rawPost(`${base}/callbacks`, '[3]', { 'content-type': 'application/json', 'x-correlation-id': correlationId })).status).toBe(202);
    await expect(response).resolves.toEqual([3]);
  });

  it('is not encapsulated, as fastify-plugin would make it, and names itself', () => {
    const plugin = fastifyWebhook(new Controller()) as unknown as Record<symbol, unknown>;
    expect(plugin[Symbol.for('skip-override')]).toBe(true);
    expect(plugin[Symbol.for('fastify.display-name')]).toBe('rrxc-webhook');
  });

  it('gets the hooks of the scope it is registered in, and the prefix register was given', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const app = Fastify();
    const seen: string[] = [];
    await app.register(async (scope) => {
      scope.addHook('onRequest', async (request) => void seen.push(request.url));
      await scope.register(fastifyWebhook(controller), { prefix: '/v1' });
    });
    const base = await serve(app);
    expect(await rawPost(`${base}/v1/callbacks/nobody`, '{}', { 'content-type': 'application/json' })).toEqual({ status: 404, body: { outcome: 'unmatched' } });
    expect(seen).toEqual(['/v1/callbacks/nobody']);
  });

  it('throws InvalidArgumentError for a bad controller or option', () => {
    const controller = new Controller();
    expect(() => fastifyWebhook({} as Controller)).toThrow(InvalidArgumentError);
    for (const options of [{ path: '' }, { maxBodySize: -1 }, { bodyLimit: 5 }, 'json']) {
      expect(() => fastifyWebhook(controller, options as never)).toThrow(InvalidArgumentError);
    }
    expect(() => fastifyExchange(controller, 'run' as never)).toThrow(InvalidArgumentError);
    expect(() => fastifyExchange(controller, () => 1, { timeout: Number.NaN })).toThrow(InvalidArgumentError);
    return controller.close();
  });
});

describe('rrxc/integrations and fastify', () => {
  it('imports nothing of fastify, not even a type: fastify is no dependency of rrxc', () => {
    const dir = new URL('../../src/integrations/', import.meta.url);
    const imports = readdirSync(dir)
      .filter((file) => file.endsWith('.ts'))
      .flatMap((file) => ts.preProcessFile(readFileSync(new URL(file, dir), 'utf8'), true, true).importedFiles.map((i) => `${file}: ${i.fileName}`));
    expect(imports.length).toBeGreaterThan(10);
    expect(imports.filter((line) => /: (?:@types\/)?fastify(?:\/|$)/.test(line))).toEqual([]);
  });
});
