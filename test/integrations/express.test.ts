import { createHmac } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Controller, InvalidArgumentError, type ExchangeResult } from '../../src/index.js';
import { createCallbackListener, expressExchange, type CallbackAnswer } from '../../src/integrations/index.js';
import { describeHttpFramework, type ServedApp } from '../conformance/http-framework.js';
import { rawPost } from '../helpers/callbacks.js';

/** Starts an Express app on a free loopback port; its error middleware answers 500 and keeps the error. */
async function serve(app: express.Express): Promise<ServedApp> {
  const errors: unknown[] = [];
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    errors.push(error);
    res.status(500).json({ error: 'handled by the app' });
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const started = app.listen(0, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve(started)));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    errors,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describeHttpFramework('Express 5', {
  packageName: 'express',
  serveExchange: (controller, operation, options) => {
    const app = express();
    app.post(
      '/op',
      express.json(),
      expressExchange(controller, (xc, req: Request, res: Response) => operation(xc, req.body, res), {
        ...(options?.timeout === undefined ? {} : { timeout: options.timeout }),
        ...(options?.onUnanswered === undefined ? {} : { onUnanswered: (result: ExchangeResult, _req: Request, res: Response) => options.onUnanswered!(result, res) }),
      }),
    );
    return serve(app);
  },
  serveWebhook: (controller, options) => {
    const app = express();
    app.post('/callbacks/:id', createCallbackListener(controller, options));
    return serve(app);
  },
  answerItself: (res, text) => void (res as Response).status(201).type('text').send(text),
  answerProblem: (res, title) => void (res as Response).status(504).type('application/problem+json').send(JSON.stringify({ title })),
});

let cleanups: (() => Promise<unknown> | void)[];
beforeEach(() => {
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function started(app: express.Express): Promise<string> {
  const served = await serve(app);
  cleanups.push(() => served.close());
  return served.url;
}

function controllerFor(): Controller {
  const controller = new Controller();
  cleanups.push(() => controller.close());
  return controller;
}

describe('createCallbackListener as an Express route', () => {
  it('reads the ID from the :id route parameter before the x-correlation-id header', async () => {
    const controller = controllerFor();
    const app = express();
    app.post('/callbacks/:id', createCallbackListener(controller));
    app.post('/callbacks', createCallbackListener(controller));
    const base = await started(app);
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
    const controller = controllerFor();
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
    const base = await started(app);
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
    const controller = controllerFor();
    const answers: CallbackAnswer<unknown>[] = [];
    const app = express();
    app.post('/callbacks/:id', express.json(), createCallbackListener(controller, { onAnswer: (answer) => answers.push(answer) }));
    const base = await started(app);
    const answered = await rawPost(`${base}/callbacks/some-id`, '{}', { 'content-type': 'application/json' });
    expect(answered).toEqual({ status: 500, body: { outcome: 'failed' } });
    expect(answers[0]!.error).toEqual(new Error('the request body was already read, by a body parser mounted before the callback listener; mount it first, or use listener.route()'));
  });
});

describe('expressExchange arguments', () => {
  it('throws InvalidArgumentError for a bad controller, operation or option', () => {
    const controller = controllerFor();
    const operation = (): undefined => undefined;
    expect(() => expressExchange({} as Controller, operation)).toThrow(InvalidArgumentError);
    expect(() => expressExchange(controller, 'run' as never)).toThrow(InvalidArgumentError);
    for (const options of [{ timeout: -1 }, { timeOut: 5 }, { onUnanswered: 504 }, 'fast']) {
      expect(() => expressExchange(controller, operation, options as never)).toThrow(InvalidArgumentError);
    }
  });
});
