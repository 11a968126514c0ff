import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BackplaneError, claimCommitted, Controller, InvalidArgumentError, MemoryTagStore, type Backplane } from '../../src/index.js';
import {
  createCallbackListener,
  fromHeader,
  fromPath,
  type CallbackAnswer,
  type CallbackListenerOptions,
} from '../../src/integrations/index.js';
import { rawPost, startPartner, type Answered, type PartnerCall } from '../helpers/callbacks.js';
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

/**
 * The application: `POST /pay?amount=&delay=&copies=` charges through the
 * partner and waits for its callback; `/callbacks/:id` is the webhook.
 */
async function startApp(options: { timeout?: number; listener?: Partial<CallbackListenerOptions<Receipt>> } = {}) {
  const controller = new Controller<Charge, Receipt>();
  cleanups.push(() => controller.close());
  const partner = await startPartner();
  cleanups.push(() => partner.close());
  const answers: CallbackAnswer<Receipt>[] = [];
  const compensate = vi.fn();
  const webhook = createCallbackListener(controller, {
    getCorrelationId: fromPath('/callbacks/:id'),
    compensate,
    onAnswer: (answer) => answers.push(answer),
    ...options.listener,
  });
  let base = '';
  const app = await listen(async (request, response) => {
    if (request.url!.startsWith('/callbacks/')) return webhook(request, response);
    const params = new URL(request.url!, base).searchParams;
    let correlationId = '';
    const result = await controller.synchronize({ timeout: options.timeout ?? 2_000 }, async (xc) => {
      correlationId = xc.newCorrelationId();
      const charge: Charge = { amount: Number(params.get('amount')) };
      xc.registerRequest({ correlationId, message: charge });
      const call: PartnerCall = {
        callbackUrl: `${base}/callbacks/${correlationId}`,
        delayMs: Number(params.get('delay') ?? 10),
        copies: Number(params.get('copies') ?? 1),
        body: JSON.stringify({ status: 'charged', amount: charge.amount }),
      };
      const accepted = await fetch(partner.url, { method: 'POST', body: JSON.stringify(call), signal: xc.signal });
      expect(accepted.status).toBe(202);
    });
    response.setHeader('x-correlation-id', correlationId);
    if (result.status !== 'completed') return void response.writeHead(504).end();
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result.entries[0]!.response));
  });
  base = app.url;
  cleanups.push(() => app.close());
  return { controller, app, partner, answers, compensate, webhook };
}

/** Posts raw bytes to the app with node:http, so headers and chunking are under the test's control: JSON unless `headers` say otherwise. */
function post(url: string, body: Buffer | string, headers: Record<string, string | string[]> = {}): Promise<Answered> {
  return rawPost(url, body, { 'content-type': 'application/json', ...headers });
}

describe('createCallbackListener over real HTTP', () => {
  it('answers 202 to a callback its exchange is waiting for and hands over the payload', async () => {
    const { app, partner, answers } = await startApp();
    const response = await fetch(`${app.url}/pay?amount=12`, { method: 'POST' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'charged', amount: 12 });
    await vi.waitFor(() => expect(partner.answered).toEqual([202]));
    expect(answers[0]).toMatchObject({ outcome: 'delivered', statusCode: 202, correlationId: response.headers.get('x-correlation-id') });
  });

  it('answers 200 to a repeated callback (duplicate)', async () => {
    const { app, partner } = await startApp();
    expect((await fetch(`${app.url}/pay?amount=3&copies=2`, { method: 'POST' })).status).toBe(200);
    await vi.waitFor(() => expect(partner.answered).toEqual([202, 200]));
  });

  it('answers 410 to a callback after the timeout and compensates once, also when the partner retries', async () => {
    const { app, partner, compensate } = await startApp({ timeout: 100 });
    const response = await fetch(`${app.url}/pay?amount=7&delay=300&copies=2`, { method: 'POST' });
    expect(response.status).toBe(504);
    await vi.waitFor(() => expect(partner.answered).toEqual([410, 410]));
    expect(compensate).toHaveBeenCalledTimes(1);
    expect(compensate).toHaveBeenCalledWith({ status: 'charged', amount: 7 }, expect.objectContaining({ correlationId: response.headers.get('x-correlation-id') }));
  });

  it('answers 500 when the compensation fails, and compensates on the retry', async () => {
    const compensate = vi.fn().mockRejectedValueOnce(new Error('ledger down')).mockResolvedValue(undefined);
    const { app, partner } = await startApp({ timeout: 100, listener: { compensate } });
    expect((await fetch(`${app.url}/pay?amount=1&delay=300&copies=2`, { method: 'POST' })).status).toBe(504);
    await vi.waitFor(() => expect(partner.answered).toEqual([500, 410]));
    expect(compensate).toHaveBeenCalledTimes(2);
  });

  it('answers 404 to a callback nobody waits for', async () => {
    const { app } = await startApp();
    expect(await post(`${app.url}/callbacks/nobody`, '{"status":"charged","amount":1}')).toEqual({ status: 404, body: { outcome: 'unmatched' } });
  });

  it('answers 400 to a body that is not JSON, and to a request without an ID', async () => {
    const { app } = await startApp();
    const notJson = await post(`${app.url}/callbacks/some-id`, 'charged!');
    expect(notJson).toMatchObject({ status: 400, body: { outcome: 'invalid' } });
    const noId = await post(`${app.url}/callbacks/`, '{}');
    expect(noId).toMatchObject({ status: 400, body: { outcome: 'invalid', error: expect.stringContaining('no correlation ID') } });
    const tooLong = await post(`${app.url}/callbacks/${'x'.repeat(300)}`, '{}');
    expect(tooLong).toMatchObject({ status: 400, body: { outcome: 'invalid' } });
  });

  it('answers 413 to a body over maxBodySize, declared or streamed, without reading it all', async () => {
    const { app, answers } = await startApp({ listener: { maxBodySize: 64 } });
    const declared = await post(`${app.url}/callbacks/some-id`, 'x'.repeat(65), { 'content-length': '65' });
    expect(declared).toMatchObject({ status: 413, body: { outcome: 'too-large' } });
    const streamed = await post(`${app.url}/callbacks/some-id`, Buffer.alloc(10_000, 'x'), { 'transfer-encoding': 'chunked' });
    expect(streamed.status).toBe(413);
    const fits = await post(`${app.url}/callbacks/some-id`, JSON.stringify({ pad: 'x'.repeat(40) }));
    expect(fits.status).toBe(404);
    expect(answers.map((a) => a.outcome)).toEqual(['too-large', 'too-large', 'unmatched']);
  });

  it('answers 400 to an empty body, 415 to a body that is not declared JSON or text, and takes JSON posted as text/plain', async () => {
    const { app, controller, answers } = await startApp();
    const exchange = controller.createExchange();
    const { correlationId, response } = exchange.registerRequest();
    const url = `${app.url}/callbacks/${correlationId}`;
    expect(await post(url, '')).toMatchObject({ status: 400, body: { outcome: 'invalid', error: 'the callback has an empty body' } });
    expect(await post(url, 'a=1', { 'content-type': 'application/x-www-form-urlencoded' })).toMatchObject({ status: 415, body: { outcome: 'unsupported-media-type' } });
    expect((await post(url, '{}', { 'content-type': 'application/xml' })).status).toBe(415);
    expect((await post(url, 'charged!', { 'content-type': 'text/plain' })).status).toBe(400);
    // No content-type at all: nothing says it is JSON.
    expect((await rawPost(url, '{}', {})).status).toBe(415);
    expect(controller.hasRequest(correlationId)).toBe(true);
    // fetch() declares a string body text/plain;charset=UTF-8.
    expect((await fetch(url, { method: 'POST', body: '{"ok":true}' })).status).toBe(202);
    await expect(response).resolves.toEqual({ ok: true });
    expect(answers.map((a) => a.outcome)).toEqual(['invalid', 'unsupported-media-type', 'unsupported-media-type', 'invalid', 'unsupported-media-type', 'delivered']);
    exchange.close();
  });

  it('accepts the media types of contentTypes, with parameters and suffixes, in any case', async () => {
    const { app, controller } = await startApp({ listener: { contentTypes: ['application/*+json', 'Text/*'] } });
    const exchange = controller.createExchange();
    const { correlationId } = exchange.registerRequest();
    const url = `${app.url}/callbacks/${correlationId}`;
    expect((await post(url, '{}', { 'content-type': 'application/json' })).status).toBe(415);
    expect((await post(url, '{}', { 'content-type': 'APPLICATION/Merge-Patch+JSON; charset=utf-8' })).status).toBe(202);
    expect((await post(url, '{}', { 'content-type': 'text/csv' })).status).toBe(200);
    exchange.close();
  });

  it('passes any media type to a parse of yours, unless contentTypes says otherwise', async () => {
    const parse = (body: Buffer): Receipt => ({ status: 'charged', amount: Number(body.toString()) });
    const { app, controller } = await startApp({ listener: { parse } });
    const exchange = controller.createExchange();
    const { correlationId, response } = exchange.registerRequest();
    expect((await rawPost(`${app.url}/callbacks/${correlationId}`, '42', {})).status).toBe(202);
    await expect(response).resolves.toEqual({ status: 'charged', amount: 42 });
    exchange.close();
  });

  it('answers 401 when authorize says no, before routing', async () => {
    const { app, controller } = await startApp({ listener: { authorize: (request) => request.headers['x-signature'] === 'good' } });
    const exchange = controller.createExchange();
    const { correlationId, response } = exchange.registerRequest();
    expect((await post(`${app.url}/callbacks/${correlationId}`, '{}', { 'x-signature': 'bad' })).status).toBe(401);
    expect(controller.hasRequest(correlationId)).toBe(true);
    expect((await post(`${app.url}/callbacks/${correlationId}`, '{"ok":1}', { 'x-signature': 'good' })).status).toBe(202);
    await expect(response).resolves.toEqual({ ok: 1 });
    exchange.close();
  });

  it('answers 503 once the controller is closed, so the partner retries elsewhere', async () => {
    const { app, controller } = await startApp();
    await controller.close();
    const response = await fetch(`${app.url}/callbacks/some-id`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
  });

  it('answers 503 with retry-after when a backplane cannot tell the outcome, since a retry is safe', async () => {
    // A backplane whose owners never answer: every reply not pending here is forwarded and fails.
    const unreachable: Backplane = {
      start: () => undefined,
      forward: () => Promise.reject(new BackplaneError('owner-unreachable', 'the owner did not answer in time')),
      close: () => undefined,
    };
    const controller = new Controller({ backplane: unreachable });
    cleanups.push(() => controller.close());
    const answers: CallbackAnswer<unknown>[] = [];
    const server = await listen(createCallbackListener(controller, { onAnswer: (answer) => answers.push(answer) }));
    cleanups.push(() => server.close());
    const response = await fetch(server.url, { method: 'POST', body: '{}', headers: { 'x-correlation-id': 'owned-elsewhere' } });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(await response.json()).toEqual({ outcome: 'unavailable' });
    expect(answers[0]).toMatchObject({ outcome: 'unavailable', correlationId: 'owned-elsewhere', error: expect.any(BackplaneError) });
  });

  it('reads the ID from a header with fromHeader', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const server = await listen(createCallbackListener(controller, { getCorrelationId: fromHeader('X-Request-Id') }));
    cleanups.push(() => server.close());
    const exchange = controller.createExchange();
    const { correlationId } = exchange.registerRequest();
    expect((await post(server.url, '{}')).status).toBe(400);
    expect((await post(server.url, '[1]', { 'x-request-id': correlationId })).status).toBe(202);
    expect(exchange.getResponse(correlationId)).toEqual([1]);
    exchange.close();
  });

  it('reads the first value of a header sent twice with fromHeader, not the two joined', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const server = await listen(createCallbackListener(controller, { getCorrelationId: fromHeader('x-correlation-id') }));
    cleanups.push(() => server.close());
    const exchange = controller.createExchange();
    const { correlationId } = exchange.registerRequest();
    // Node joins the values of a repeated custom header into "a, b" in `headers`.
    expect((await post(server.url, '[2]', { 'x-correlation-id': [correlationId, 'other'] })).status).toBe(202);
    expect(exchange.getResponse(correlationId)).toEqual([2]);
    exchange.close();
  });
});

describe('listener.route for framework-parsed bodies', () => {
  it('routes and compensates like the listener, without reading a body', async () => {
    const compensate = vi.fn();
    const controller = new Controller<unknown, { v: number }>();
    cleanups.push(() => controller.close());
    const { route } = createCallbackListener(controller, { compensate });
    const exchange = controller.createExchange();
    const { correlationId } = exchange.registerRequest();
    expect(await route(correlationId, { v: 1 })).toMatchObject({ statusCode: 202, outcome: 'delivered' });
    expect(await route(correlationId, { v: 1 })).toMatchObject({ statusCode: 200, outcome: 'duplicate' });
    exchange.close();
    const other = controller.createExchange();
    const { correlationId: lateId } = other.registerRequest();
    other.close();
    await other.wait();
    expect(await route(lateId, { v: 2 })).toMatchObject({ statusCode: 410, outcome: 'rolled-back', compensated: true });
    expect(await route(lateId, { v: 2 })).toMatchObject({ statusCode: 410, compensated: false });
    expect(compensate).toHaveBeenCalledTimes(1);
    expect(await route(undefined, { v: 3 })).toMatchObject({ statusCode: 400, outcome: 'invalid' });
  });

  it('answers 200 and compensates nothing for a late callback whose work the worker claimed committed', async () => {
    const compensate = vi.fn();
    const store = new MemoryTagStore();
    const controller = new Controller<unknown, { v: number }>({ tagStore: store });
    cleanups.push(() => controller.close());
    const { route } = createCallbackListener(controller, { compensate });
    const exchange = controller.createExchange();
    const { correlationId } = exchange.registerRequest();
    expect(await claimCommitted(store, correlationId)).toBe('won');
    exchange.close();
    expect((await exchange.wait()).committed).toEqual([correlationId]);
    expect(await route(correlationId, { v: 4 })).toMatchObject({ statusCode: 200, outcome: 'committed', compensated: false });
    expect(compensate).not.toHaveBeenCalled();
  });
});

describe('createCallbackListener arguments', () => {
  it('throws InvalidArgumentError for bad options and a bad controller', () => {
    const controller = new Controller();
    const bad: unknown[] = [
      { maxBodySize: -1 },
      { parse: 'json' },
      { getCorrelationID: () => 'x' },
      { compensatedTag: '' },
      { contentTypes: 'application/json' },
      { contentTypes: [] },
      { contentTypes: ['json'] },
      { contentTypes: ['*/json'] },
    ];
    for (const options of bad) {
      expect(() => createCallbackListener(controller, options as CallbackListenerOptions<unknown>)).toThrow(InvalidArgumentError);
    }
    expect(() => createCallbackListener({} as Controller)).toThrow(InvalidArgumentError);
    expect(() => fromPath('/callbacks/id')).toThrow(InvalidArgumentError);
    expect(() => fromHeader('')).toThrow(InvalidArgumentError);
    return controller.close();
  });
});
