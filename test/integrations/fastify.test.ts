import { createHmac } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Controller, InvalidArgumentError, type ExchangeResult } from '../../src/index.js';
import { fastifyExchange, fastifyWebhook } from '../../src/integrations/index.js';
import { describeHttpFramework, type ServedApp } from '../conformance/http-framework.js';
import { rawPost } from '../helpers/callbacks.js';

/** Starts a Fastify app on a free loopback port; its error handler keeps the error and answers its statusCode, else 500. */
async function serve(app: FastifyInstance): Promise<ServedApp> {
  const errors: unknown[] = [];
  app.setErrorHandler((error, _request, reply) => {
    errors.push(error);
    return reply.code((error as { statusCode?: number }).statusCode ?? 500).send({ error: 'handled by the app' });
  });
  return { url: await app.listen({ port: 0, host: '127.0.0.1' }), errors, close: () => app.close() };
}

describeHttpFramework('Fastify 5', {
  packageName: 'fastify',
  serveExchange: async (controller, operation, options) => {
    const app = Fastify();
    app.post<{ Body: unknown }>(
      '/op',
      fastifyExchange(controller, (xc, request: FastifyRequest<{ Body: unknown }>, reply: FastifyReply) => operation(xc, request.body, reply), {
        ...(options?.timeout === undefined ? {} : { timeout: options.timeout }),
        ...(options?.onUnanswered === undefined ? {} : { onUnanswered: (result: ExchangeResult, _request: FastifyRequest<{ Body: unknown }>, reply: FastifyReply) => options.onUnanswered!(result, reply) }),
      }),
    );
    return serve(app);
  },
  serveWebhook: async (controller, options) => {
    const app = Fastify();
    await app.register(fastifyWebhook(controller, options));
    return serve(app);
  },
  answerItself: (reply, text) => (reply as FastifyReply).code(201).type('text/plain').send(text),
  answerProblem: (reply, title) => (reply as FastifyReply).code(504).type('application/problem+json').send(JSON.stringify({ title })),
});

let cleanups: (() => Promise<unknown> | void)[];
beforeEach(() => {
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function started(app: FastifyInstance): Promise<string> {
  const served = await serve(app);
  cleanups.push(() => served.close());
  return served.url;
}

describe('fastifyWebhook', () => {
  it("keeps its raw-body parser to its route: the app's other routes still parse JSON, with their bodyLimit", async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const app = Fastify({ bodyLimit: 16 });
    await app.register(fastifyWebhook(controller, { path: '/hooks/:id' }));
    app.post('/echo', async (request) => ({ parsed: request.body }));
    const base = await started(app);
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
    const base = await started(app);
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
    const base = await started(app);
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
    const base = await started(app);
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
