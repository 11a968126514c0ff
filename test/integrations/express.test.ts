import { createHmac } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Controller, InvalidArgumentError, type ExchangeResult } from '../../src/index.js';
import { createCallbackListener, expressExchange, type CallbackAnswer, type CallbackListenerOptions } from '../../src/integrations/index.js';
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

/** Starts an Express app on a free loopback port. */
async function serve(app: express.Express): Promise<string> {
  const server = await new Promise<Server>((resolve, reject) => {
    const started = app.listen(0, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve(started)));
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * The application: `POST /pay {amount}` charges through a real partner and
 * answers with its callback, which arrives on `POST /callbacks/:id`;
 * `?delay=` and `?copies=` tell the partner when and how often to call back.
 */
async function startApp(options: { timeout?: number; listener?: Partial<CallbackListenerOptions<Receipt, Request>> } = {}) {
  const rollbacks: ExchangeResult[] = [];
  const controller = new Controller<Charge, Receipt>({ onRollback: (_, result) => void rollbacks.push(result) });
  cleanups.push(() => controller.close());
  const partner = await startPartner();
  cleanups.push(() => partner.close());
  const answers: CallbackAnswer<Receipt>[] = [];
  const compensate = vi.fn();
  const errors: unknown[] = [];
  const ids: string[] = [];
  const app = express();
  let base = '';
  app.post(
    '/callbacks/:id',
    createCallbackListener<Receipt, Request>(controller, { compensate, onAnswer: (answer) => answers.push(answer), ...options.listener }),
  );
  app.post(
    '/pay',
    express.json(),
    expressExchange(
      controller,
      async (xc, req: Request<Record<string, never>, Receipt, Charge, { delay?: string; copies?: string }>) => {
        const { correlationId, response } = xc.registerRequest({ message: req.body });
        ids.push(correlationId);
        const call = {
          callbackUrl: `${base}/callbacks/${correlationId}`,
          delayMs: Number(req.query.delay ?? 10),
          copies: Number(req.query.copies ?? 1),
          body: JSON.stringify({ status: 'charged', amount: req.body.amount }),
        };
        const accepted = await fetch(partner.url, { method: 'POST', body: JSON.stringify(call), signal: xc.signal });
        expect(accepted.status).toBe(202);
        return response;
      },
      options.timeout === undefined ? undefined : { timeout: options.timeout },
    ),
  );
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    errors.push(error);
    res.status(500).json({ error: 'handled by the app' });
  });
  base = await serve(app);
  return { controller, base, partner, answers, compensate, errors, ids, rollbacks };
}

const pay = (base: string, amount: number, query = '', signal?: AbortSignal): Promise<globalThis.Response> =>
  fetch(`${base}/pay${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount }), ...(signal ? { signal } : {}) });

describe('expressExchange and the webhook route on a real Express app', () => {
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
    const { base, controller, partner, ids, rollbacks } = await startApp();
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
  });

  it('hands an error of the operation to next(), after tagging the IDs it registered', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const app = express();
    const ids: string[] = [];
    const failure = new Error('the queue is down');
    app.get('/', expressExchange(controller, (xc) => {
      ids.push(xc.registerRequest().correlationId);
      throw failure;
    }));
    const handled: unknown[] = [];
    app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
      handled.push(error);
      res.status(502).json({ error: 'upstream' });
    });
    const base = await serve(app);
    const response = await fetch(base);
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
    const app = express();
    app.get('/nothing', expressExchange(controller, () => undefined));
    app.get('/itself', expressExchange(controller, async (xc, _req, res: Response) => {
      const { correlationId, response } = xc.registerRequest();
      setTimeout(() => void controller.registerResponse({ correlationId, message: 'late enough' }), 5);
      res.status(201).type('text').send(await response);
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
    const app = express();
    app.get('/', expressExchange(controller, (xc) => xc.registerRequest().response, {
      timeout: 20,
      onUnanswered: (result, _req, res: Response) => void res.status(504).type('application/problem+json').send(JSON.stringify({ title: result.status })),
    }));
    const base = await serve(app);
    const response = await fetch(base);
    expect(response.status).toBe(504);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await response.json()).toEqual({ title: 'timed-out' });
  });

  it('leaves no timer and no listener behind once the exchanges ended', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const controller = new Controller<unknown, number>({ timeout: 10_000 });
    cleanups.push(() => controller.close());
    const signals: AbortSignal[] = [];
    const app = express();
    app.get('/', expressExchange(controller, (xc) => {
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

describe('the webhook route on Express', () => {
  it('answers every body-rule case as the node:http listener does', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const app = express();
    app.post('/callbacks/:id', createCallbackListener(controller, { maxBodySize: CASE_BODY_LIMIT }));
    const viaExpress = await answerCases(controller, `${await serve(app)}/callbacks`);
    const plain = await listen(createCallbackListener(controller, { maxBodySize: CASE_BODY_LIMIT, getCorrelationId: (req) => req.url?.split('/')[2] }));
    cleanups.push(() => plain.close());
    const viaNodeHttp = await answerCases(controller, `${plain.url}/callbacks`);
    expect(viaExpress).toEqual(EXPECTED_CASE_ANSWERS);
    expect(viaExpress).toEqual(viaNodeHttp);
  });

  it('reads the ID from the :id route parameter before the x-correlation-id header', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const app = express();
    app.post('/callbacks/:id', createCallbackListener(controller));
    app.post('/callbacks', createCallbackListener(controller));
    const base = await serve(app);
    const exchange = controller.createExchange();
    const [byPath, byHeader] = [exchange.registerRequest(), exchange.registerRequest()];
    const headers = { 'content-type': 'application/json', 'x-correlation-id': byHeader.correlationId };
    expect((await rawPost(`${base}/callbacks/${byPath.correlationId}`, '1', headers)).status).toBe(202);
    expect((await rawPost(`${base}/callbacks`, '2', headers)).status).toBe(202);
    expect(await exchange.wait()).toMatchObject({ status: 'completed', entries: [{ response: 1 }, { response: 2 }] });
  });

  it('checks a signature over the raw bytes, read by itself or left by express.raw()', async () => {
    const secret = 'partner secret';
    const sign = (body: string): string => createHmac('sha256', secret).update(body).digest('hex');
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const bodies: string[] = [];
    const webhook = createCallbackListener<unknown, Request>(controller, {
      authorize: (req, body) => {
        bodies.push(body.toString());
        return req.get('x-signature') === sign(body.toString());
      },
    });
    const app = express();
    app.post('/own/:id', webhook);
    app.post('/raw/:id', express.raw({ type: () => true }), webhook);
    const base = await serve(app);
    // Spacing a JSON parser would not keep: the signature is over these bytes.
    const body = '{ "paid" :true }';
    for (const route of ['own', 'raw']) {
      const exchange = controller.createExchange();
      const { correlationId, response } = exchange.registerRequest();
      const url = `${base}/${route}/${correlationId}`;
      expect((await rawPost(url, body, { 'content-type': 'application/json', 'x-signature': sign('{}') })).status).toBe(401);
      expect((await rawPost(url, body, { 'content-type': 'application/json', 'x-signature': sign(body) })).status).toBe(202);
      await expect(response).resolves.toEqual({ paid: true });
    }
    expect(bodies).toEqual([body, body, body, body]);
  });

  it('answers 500 and says why when express.json() read the body before it', async () => {
    const controller = new Controller();
    cleanups.push(() => controller.close());
    const answers: CallbackAnswer<unknown>[] = [];
    const app = express();
    app.post('/callbacks/:id', express.json(), createCallbackListener(controller, { onAnswer: (answer) => answers.push(answer) }));
    const base = await serve(app);
    const answered = await rawPost(`${base}/callbacks/some-id`, '{}', { 'content-type': 'application/json' });
    expect(answered).toEqual({ status: 500, body: { outcome: 'failed' } });
    expect(answers[0]!.error).toEqual(new Error('the request body was already read, by a body parser mounted before the callback listener; mount it first, or use listener.route()'));
  });
});

describe('expressExchange arguments', () => {
  it('throws InvalidArgumentError for a bad controller, operation or option', () => {
    const controller = new Controller();
    const operation = (): undefined => undefined;
    expect(() => expressExchange({} as Controller, operation)).toThrow(InvalidArgumentError);
    expect(() => expressExchange(controller, 'run' as never)).toThrow(InvalidArgumentError);
    for (const options of [{ timeout: -1 }, { timeOut: 5 }, { onUnanswered: 504 }, 'fast']) {
      expect(() => expressExchange(controller, operation, options as never)).toThrow(InvalidArgumentError);
    }
    return controller.close();
  });
});

describe('rrxc/integrations and express', () => {
  it('imports nothing of express, not even a type: express is no dependency of rrxc', () => {
    const dir = new URL('../../src/integrations/', import.meta.url);
    const imports = readdirSync(dir)
      .filter((file) => file.endsWith('.ts'))
      .flatMap((file) => ts.preProcessFile(readFileSync(new URL(file, dir), 'utf8'), true, true).importedFiles.map((i) => `${file}: ${i.fileName}`));
    expect(imports.length).toBeGreaterThan(10);
    expect(imports.filter((line) => /: (?:@types\/)?express(?:\/|$)/.test(line))).toEqual([]);
  });
});
