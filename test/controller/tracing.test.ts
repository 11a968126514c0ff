import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, tracingChannel, unsubscribe as unsubscribeChannel } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNELS, EXCHANGE_TRACING, ExchangeEndedError, InvalidArgumentError, type ExchangeTraceContext } from '../../src/index.js';
import { clock, closeControllersAfterEach, make } from '../helpers/controllers.js';

closeControllersAfterEach();

const tracing = tracingChannel<unknown, ExchangeTraceContext>(EXCHANGE_TRACING);
const EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;
let unsubscribe: (() => void) | undefined;
afterEach(() => unsubscribe?.());

/** Records every tracing event as `[event, exchange id, status]`. */
function record(): [string, string, string | undefined][] {
  const seen: [string, string, string | undefined][] = [];
  const handlers = Object.fromEntries(
    EVENTS.map((event) => [event, (context: ExchangeTraceContext) => void seen.push([event, context.exchange.id, context.result?.status])]),
  ) as unknown as Parameters<typeof tracing.subscribe>[0];
  tracing.subscribe(handlers);
  unsubscribe = () => tracing.unsubscribe(handlers);
  return seen;
}

describe('the exchange tracing channel', () => {
  it('brackets an exchange\'s creation with start/end and its end with asyncStart/asyncEnd', async () => {
    const seen = record();
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    expect(seen).toEqual([
      ['start', xc.id, undefined],
      ['end', xc.id, undefined],
    ]);
    await controller.registerResponse({ correlationId, message: 'ok' });
    await xc.wait();
    expect(seen.slice(2)).toEqual([
      ['asyncStart', xc.id, 'completed'],
      ['asyncEnd', xc.id, 'completed'],
    ]);
  });

  it('publishes error, with the ExchangeEndedError, for an exchange that did not complete', async () => {
    const errors: unknown[] = [];
    const seen = record();
    const onError = (context: unknown): void => void errors.push((context as ExchangeTraceContext).error);
    tracing.error.subscribe(onError);
    try {
      const controller = make();
      const xc = controller.createExchange({ timeout: 50 });
      xc.registerRequest();
      clock.advance(50);
      await xc.wait();
      expect(seen.slice(2)).toEqual([
        ['error', xc.id, 'timed-out'],
        ['asyncStart', xc.id, 'timed-out'],
        ['asyncEnd', xc.id, 'timed-out'],
      ]);
      expect(errors).toEqual([expect.any(ExchangeEndedError)]);
      expect(errors[0]).toMatchObject({ status: 'timed-out' });
    } finally {
      tracing.error.unsubscribe(onError);
    }
  });

  it('runs synchronize()\'s operation, awaits included, in the store a tracer binds to start', async () => {
    record();
    const store = new AsyncLocalStorage<unknown>();
    tracing.start.bindStore(store, (context) => `span of ${context.exchange.id}`);
    try {
      const controller = make();
      const seenInside: unknown[] = [];
      const result = await controller.synchronize({}, async (xc) => {
        seenInside.push(store.getStore());
        await Promise.resolve();
        seenInside.push(store.getStore());
        xc.close();
      });
      expect(seenInside).toEqual([`span of ${result.exchangeId}`, `span of ${result.exchangeId}`]);
      expect(store.getStore()).toBeUndefined();
    } finally {
      tracing.start.unbindStore(store);
    }
  });

  it('runs request()\'s send in that store too', async () => {
    record();
    const store = new AsyncLocalStorage<unknown>();
    tracing.start.bindStore(store, () => 'request span');
    try {
      const controller = make();
      let inside: unknown;
      const answer = await controller.request('ping', (correlationId) => {
        inside = store.getStore();
        void controller.registerResponse({ correlationId, message: 'pong' });
      });
      expect([answer, inside]).toEqual(['pong', 'request span']);
    } finally {
      tracing.start.unbindStore(store);
    }
  });

  it('traces an exchange that ends as it is made (an aborted signal) in order', async () => {
    const seen = record();
    const controller = make();
    const xc = controller.createExchange({ signal: AbortSignal.abort('gone') });
    await xc.wait();
    expect(seen.map(([event, , status]) => [event, status])).toEqual([
      ['start', undefined],
      ['error', 'aborted'],
      ['asyncStart', 'aborted'],
      ['asyncEnd', 'aborted'],
      ['end', 'aborted'],
    ]);
  });
});

describe('trace context across the correlation', () => {
  it('keeps the carrier a request was registered with and hands it to the subscribers of its reply', async () => {
    const seen: [string, unknown][] = [];
    const names = [CHANNELS.requestRegistered, CHANNELS.responseDelivered, CHANNELS.responseDuplicate];
    const listeners = names.map((name) => {
      const listener = (message: unknown): void => {
        const { carrier, requestCarrier } = message as { carrier?: unknown; requestCarrier?: unknown };
        seen.push([name, carrier ?? requestCarrier]);
      };
      subscribe(name, listener);
      return [name, listener] as const;
    });
    try {
      const controller = make();
      const xc = controller.createExchange();
      const carrier = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
      const { correlationId } = xc.registerRequest({ message: 'job', carrier });
      const other = xc.registerRequest();
      await controller.registerResponse({ correlationId, message: 'done' });
      await controller.registerResponse({ correlationId, message: 'again' });
      await controller.registerResponse({ correlationId: other.correlationId, message: 'done' });
      expect(seen).toEqual([
        [CHANNELS.requestRegistered, carrier],
        [CHANNELS.requestRegistered, undefined],
        [CHANNELS.responseDelivered, carrier],
        [CHANNELS.responseDuplicate, carrier],
        [CHANNELS.responseDelivered, undefined],
      ]);
    } finally {
      for (const [name, listener] of listeners) unsubscribeChannel(name, listener);
    }
  });

  it('refuses a carrier that is not an object', () => {
    const xc = make().createExchange();
    expect(() => xc.registerRequest({ carrier: 'traceparent' as never })).toThrow(InvalidArgumentError);
    expect(xc.registerRequest({ carrier: {} }).correlationId).toHaveLength(21);
  });

  it('lets request() make its carrier once the exchange is traced, so it names the exchange', async () => {
    record();
    const store = new AsyncLocalStorage<unknown>();
    tracing.start.bindStore(store, (context) => context.exchange.id);
    const carriers: unknown[] = [];
    const listener = (message: unknown): void => void carriers.push((message as { carrier?: unknown }).carrier);
    subscribe(CHANNELS.requestRegistered, listener);
    try {
      const controller = make();
      const answer = await controller.request('ping', (correlationId) => void controller.registerResponse({ correlationId, message: 'pong' }), {
        carrier: () => ({ traceparent: `made in ${String(store.getStore())}` }),
      });
      expect(answer).toBe('pong');
      expect(carriers).toEqual([{ traceparent: expect.stringMatching(/^made in .+-\d+$/) }]);
    } finally {
      tracing.start.unbindStore(store);
      unsubscribeChannel(CHANNELS.requestRegistered, listener);
    }
  });
});
