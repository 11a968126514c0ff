// The suite every HTTP framework integration of rrxc/integrations must pass
// (test/integrations/express.test.ts and fastify.test.ts run it): an
// exchange per request, bound to its connection and its timeout, and a
// webhook route that answers every callback as the node:http listener does.
// Real apps on loopback, a real partner calling back.
import { getEventListeners } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Controller, type Exchange, type ExchangeResult } from '../../src/index.js';
import { createCallbackListener, type CallbackAnswer, type CallbackListenerOptions } from '../../src/integrations/index.js';
import { answerCases, CASE_BODY_LIMIT, EXPECTED_CASE_ANSWERS, startPartner } from '../helpers/callbacks.js';
import { listen } from '../helpers/servers.js';

/** An app of the framework under test, listening on loopback. */
export interface ServedApp {
  readonly url: string;
  /** What reached the app's own error handling (which answers 500). */
  readonly errors: unknown[];
  close(): Promise<void>;
}

/** What the suite needs of a framework: its two integrations mounted on an app, and two ways its handlers answer. */
export interface HttpFramework {
  /** The framework's package, which rrxc must not depend on. */
  readonly packageName: string;
  /**
   * An app whose `POST /op` (JSON body, parsed by the framework) is served
   * by the framework's exchange handler running `operation`.
   */
  serveExchange<Res>(
    controller: Controller<unknown, Res>,
    operation: (exchange: Exchange<unknown, Res>, body: unknown, reply: unknown) => unknown,
    options?: { timeout?: number; onUnanswered?: (result: ExchangeResult, reply: unknown) => unknown },
  ): Promise<ServedApp>;
  /** An app whose `POST /callbacks/:id` is the framework's webhook route. */
  serveWebhook<Res>(controller: Controller<unknown, Res>, options?: WebhookOptions<Res>): Promise<ServedApp>;
  /** Answers the client from inside an operation: 201 with `text` as text/plain. */
  answerItself(reply: unknown, text: string): Promise<unknown> | unknown;
  /** Answers as an `onUnanswered` hook would: 504 with `{ title }` as application/problem+json. */
  answerProblem(reply: unknown, title: string): unknown;
}

/** The webhook options the suite sets: those that do not depend on the framework's request type. */
export type WebhookOptions<Res> = Pick<CallbackListenerOptions<Res>, 'maxBodySize'> & {
  compensate?: (payload: Res, context: { correlationId: string }) => unknown;
  onAnswer?: (answer: CallbackAnswer<Res>) => void;
};

/** A charge the app asks the partner for: `delay` ms later, `copies` callbacks. */
interface Charge {
  amount: number;
  delay?: number;
  copies?: number;
}
interface Receipt {
  status: 'charged';
  amount: number;
}

export function describeHttpFramework(name: string, framework: HttpFramework): void {
  let cleanups: (() => Promise<unknown> | unknown)[];
  beforeEach(() => {
    cleanups = [];
  });
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const controllerFor = <Res>(options: ConstructorParameters<typeof Controller<unknown, Res>>[0] = {}): Controller<unknown, Res> => {
    const controller = new Controller<unknown, Res>(options);
    cleanups.push(() => controller.close());
    return controller;
  };
  const served = async (app: Promise<ServedApp>): Promise<ServedApp> => {
    const started = await app;
    cleanups.push(() => started.close());
    return started;
  };
  const post = (url: string, body: unknown, signal?: AbortSignal): Promise<Response> =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });

  /**
   * The application: `POST /op {amount, delay, copies}` charges through a
   * real partner and answers with its callback, which arrives on the
   * webhook app's `POST /callbacks/:id`.
   */
  async function startShop(options: { timeout?: number } = {}) {
    const rollbacks: ExchangeResult[] = [];
    const controller = controllerFor<Receipt>({ onRollback: (_, result) => void rollbacks.push(result) });
    const partner = await startPartner();
    cleanups.push(() => partner.close());
    const answers: CallbackAnswer<Receipt>[] = [];
    const compensate = vi.fn();
    const webhook = await served(framework.serveWebhook(controller, { compensate, onAnswer: (answer) => answers.push(answer) }));
    const ids: string[] = [];
    const app = await served(
      framework.serveExchange(
        controller,
        async (xc, body) => {
          const charge = body as Charge;
          const { correlationId, response } = xc.registerRequest({ message: charge });
          ids.push(correlationId);
          const call = {
            callbackUrl: `${webhook.url}/callbacks/${correlationId}`,
            delayMs: charge.delay ?? 10,
            copies: charge.copies ?? 1,
            body: JSON.stringify({ status: 'charged', amount: charge.amount }),
          };
          const accepted = await fetch(partner.url, { method: 'POST', body: JSON.stringify(call), signal: xc.signal });
          expect(accepted.status).toBe(202);
          return response;
        },
        options.timeout === undefined ? {} : { timeout: options.timeout },
      ),
    );
    return { controller, url: `${app.url}/op`, app, partner, answers, compensate, ids, rollbacks };
  }

  describe(`${name}: an exchange per request`, () => {
    it("answers the client with the partner's callback, as JSON; the callback got 202", async () => {
      const { url, partner, answers } = await startShop();
      const response = await post(url, { amount: 12 });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toEqual({ status: 'charged', amount: 12 });
      await vi.waitFor(() => expect(partner.answered).toEqual([202]));
      expect(answers.map((a) => a.outcome)).toEqual(['delivered']);
    });

    it('answers 504 when the callback does not come in time; the late callback gets 410 and is compensated once', async () => {
      const { url, partner, compensate, ids, rollbacks } = await startShop({ timeout: 100 });
      const response = await post(url, { amount: 7, delay: 300, copies: 2 });
      expect(response.status).toBe(504);
      expect(await response.json()).toEqual({ status: 'timed-out' });
      expect(rollbacks.map((r) => r.status)).toEqual(['timed-out']);
      await vi.waitFor(() => expect(partner.answered).toEqual([410, 410]));
      expect(compensate).toHaveBeenCalledTimes(1);
      expect(compensate).toHaveBeenCalledWith({ status: 'charged', amount: 7 }, expect.objectContaining({ correlationId: ids[0] }));
    });

    it('aborts the exchange when the client disconnects, and tags its ID for rollback', async () => {
      const { url, app, controller, partner, ids, rollbacks } = await startShop();
      const client = new AbortController();
      const paying = post(url, { amount: 3, delay: 300 }, client.signal);
      await vi.waitFor(() => expect(ids).toHaveLength(1));
      client.abort();
      await expect(paying).rejects.toThrow();
      await vi.waitFor(() => expect(rollbacks).toHaveLength(1));
      expect(rollbacks[0]).toMatchObject({ status: 'aborted', unanswered: ids, reason: expect.objectContaining({ name: 'AbortError' }) });
      expect(await controller.isRolledBack(ids[0]!)).toBe(true);
      expect(controller.openExchanges).toBe(0);
      await vi.waitFor(() => expect(partner.answered).toEqual([410]));
      expect(app.errors).toEqual([]);
    });

    it("hands an error of the operation to the app's error handling, after tagging the IDs it registered", async () => {
      const controller = controllerFor();
      const ids: string[] = [];
      const failure = new Error('the queue is down');
      const app = await served(
        framework.serveExchange(controller, (xc) => {
          ids.push(xc.registerRequest().correlationId);
          throw failure;
        }),
      );
      expect((await post(`${app.url}/op`, {})).status).toBe(500);
      expect(app.errors).toEqual([failure]);
      expect(await controller.isRolledBack(ids[0]!)).toBe(true);
    });

    it('answers 503 with retry-after when the controller closes while the client waits', async () => {
      const { url, controller, ids } = await startShop();
      const paying = post(url, { amount: 1, delay: 5_000 });
      await vi.waitFor(() => expect(ids).toHaveLength(1));
      await controller.close();
      const response = await paying;
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('1');
      expect(await response.json()).toEqual({ status: 'closed' });
    });

    it('answers 204 to an operation that resolves with nothing', async () => {
      const app = await served(framework.serveExchange(controllerFor(), () => undefined));
      expect((await post(`${app.url}/op`, {})).status).toBe(204);
    });

    it('leaves the answer to an operation that sent one itself', async () => {
      const controller = controllerFor<string>();
      const app = await served(
        framework.serveExchange(controller, async (xc, _body, reply) => {
          const { correlationId, response } = xc.registerRequest();
          setTimeout(() => void controller.registerResponse({ correlationId, message: 'late enough' }), 5);
          await framework.answerItself(reply, await response);
          return 'ignored';
        }),
      );
      const response = await post(`${app.url}/op`, {});
      expect(response.status).toBe(201);
      expect(await response.text()).toBe('late enough');
    });

    it('lets onUnanswered answer a timed-out exchange', async () => {
      const app = await served(
        framework.serveExchange(controllerFor(), (xc) => xc.registerRequest().response, {
          timeout: 20,
          onUnanswered: (result, reply) => framework.answerProblem(reply, result.status),
        }),
      );
      const response = await post(`${app.url}/op`, {});
      expect(response.status).toBe(504);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await response.json()).toEqual({ title: 'timed-out' });
    });

    it('leaves no timer and no listener behind once the exchanges ended', async () => {
      const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      const controller = controllerFor<number>({ timeout: 10_000 });
      const signals: AbortSignal[] = [];
      const app = await served(
        framework.serveExchange(controller, (xc) => {
          signals.push(xc.signal);
          const { correlationId, response } = xc.registerRequest();
          setImmediate(() => void controller.registerResponse({ correlationId, message: 1 }));
          return response;
        }),
      );
      const before = timers();
      for (let i = 0; i < 5; i++) expect(await (await post(`${app.url}/op`, {})).json()).toBe(1);
      expect(controller.openExchanges).toBe(0);
      expect(timers()).toBeLessThanOrEqual(before);
      for (const signal of signals) expect(getEventListeners(signal, 'abort')).toEqual([]);
    });
  });

  describe(`${name}: rrxc/integrations`, () => {
    it(`imports nothing of ${framework.packageName}, not even a type: it is no dependency of rrxc`, () => {
      const dir = new URL('../../src/integrations/', import.meta.url);
      const imports = readdirSync(dir)
        .filter((file) => file.endsWith('.ts'))
        .flatMap((file) => ts.preProcessFile(readFileSync(new URL(file, dir), 'utf8'), true, true).importedFiles.map((i) => `${file}: ${i.fileName}`));
      expect(imports.length).toBeGreaterThan(10);
      const names = [framework.packageName, `@types/${framework.packageName}`];
      expect(imports.filter((line) => names.some((pkg) => line.endsWith(`: ${pkg}`) || line.includes(`: ${pkg}/`)))).toEqual([]);
    });
  });

  describe(`${name}: the webhook route`, () => {
    it('answers every body-rule case as the node:http listener does', async () => {
      const controller = controllerFor();
      const app = await served(framework.serveWebhook(controller, { maxBodySize: CASE_BODY_LIMIT }));
      const viaFramework = await answerCases(controller, `${app.url}/callbacks`);
      const plain = await listen(createCallbackListener(controller, { maxBodySize: CASE_BODY_LIMIT, getCorrelationId: (req) => req.url?.split('/')[2] }));
      cleanups.push(() => plain.close());
      const viaNodeHttp = await answerCases(controller, `${plain.url}/callbacks`);
      expect(viaFramework).toEqual(EXPECTED_CASE_ANSWERS);
      expect(viaFramework).toEqual(viaNodeHttp);
    });
  });
}
