import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CHANNELS, type ResponseOutcome } from '../../src/index.js';
import { clock, closeControllersAfterEach, make } from '../helpers/controllers.js';

closeControllersAfterEach();

describe('re-entrant user code during an exchange end', () => {
  it('finds the unanswered ID rolled back and the answered one duplicate, from an abort listener on exchange.signal', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const answered = xc.registerRequest();
    const lost = xc.registerRequest();
    await controller.registerResponse({ correlationId: answered.correlationId, message: 'ok' });
    const seen: Promise<ResponseOutcome>[] = [];
    xc.signal.addEventListener('abort', () => {
      seen.push(controller.registerResponse({ correlationId: lost.correlationId, message: 'late' }));
      seen.push(controller.registerResponse({ correlationId: answered.correlationId, message: 'again' }));
    });
    xc.close();
    expect(await Promise.all(seen)).toEqual(['rolled-back', 'duplicate']);
  });

  it('finds the unanswered ID rolled back from an rrxc:exchange:ended subscriber', async () => {
    const controller = make();
    const seen: Promise<ResponseOutcome>[] = [];
    const listener = (message: unknown): void => {
      const { result } = message as { result: { unanswered: readonly string[] } };
      for (const id of result.unanswered) seen.push(controller.registerResponse({ correlationId: id, message: 'late' }));
    };
    subscribe(CHANNELS.exchangeEnded, listener);
    try {
      const xc = controller.createExchange();
      xc.registerRequest();
      xc.close();
      expect(await Promise.all(seen)).toEqual(['rolled-back']);
    } finally {
      unsubscribe(CHANNELS.exchangeEnded, listener);
    }
  });

  it('leaves no listener or timer when an rrxc:exchange:created subscriber ends the exchange at once', async () => {
    const controller = make();
    const listener = (message: unknown): void => (message as { exchange: { close(): void } }).exchange.close();
    subscribe(CHANNELS.exchangeCreated, listener);
    try {
      const ac = new AbortController();
      const xc = controller.createExchange({ signal: ac.signal, timeout: 60_000 });
      expect(xc.state).toBe('ended');
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      expect(clock.pending).toBe(0);
    } finally {
      unsubscribe(CHANNELS.exchangeCreated, listener);
    }
  });
});
