import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CHANNELS, type ResponseOutcome } from '../../src/index.js';
import { THREE_HOURS, clock, closeControllersAfterEach, make } from '../helpers/controllers.js';

closeControllersAfterEach();

describe('diagnostics channels', () => {
  it('publishes the life of an exchange on the rrxc:* channels, with what each message carries', async () => {
    const seen: [string, Record<string, unknown>][] = [];
    const listeners = Object.values(CHANNELS).map((name) => {
      const listener = (message: unknown): void => void seen.push([name, message as Record<string, unknown>]);
      subscribe(name, listener);
      return [name, listener] as const;
    });
    try {
      const controller = make();
      clock.advance(5); // the exchange starts after the controller: its duration is not the controller's age
      const xc = controller.createExchange();
      const { correlationId } = xc.registerRequest();
      xc.registerRequest({ correlationId: 'never' });
      clock.advance(30);
      await controller.registerResponse({ correlationId, message: 'ok' });
      await controller.registerResponse({ correlationId, message: 'ok' });
      await controller.registerResponse({ correlationId, message: 'better', overwrite: true });
      clock.advance(12);
      xc.close();
      await controller.registerResponse({ correlationId: 'never', message: 'late' });
      await controller.registerResponse({ correlationId: 'nobody', message: '?' });
      const response = (id: string, outcome: ResponseOutcome, exchange?: unknown): Record<string, unknown> =>
        exchange === undefined ? { controller, correlationId: id, outcome } : { controller, correlationId: id, outcome, exchange };
      expect(seen).toEqual([
        ['rrxc:exchange:created', { controller, exchange: xc }],
        ['rrxc:request:registered', { controller, exchange: xc, correlationId }],
        ['rrxc:request:registered', { controller, exchange: xc, correlationId: 'never' }],
        ['rrxc:response:delivered', response(correlationId, 'delivered', xc)],
        ['rrxc:response:duplicate', response(correlationId, 'duplicate', xc)],
        ['rrxc:response:overwritten', response(correlationId, 'overwritten', xc)],
        ['rrxc:rollback:tagged', { controller, exchange: xc, correlationIds: ['never'], tag: 'rollback', ttl: THREE_HOURS }],
        [
          'rrxc:exchange:ended',
          {
            controller,
            exchange: xc,
            result: expect.objectContaining({ exchangeId: xc.id, status: 'closed', durationMs: 42, unanswered: ['never'] }),
          },
        ],
        ['rrxc:response:rolled-back', response('never', 'rolled-back')],
        ['rrxc:response:unmatched', response('nobody', 'unmatched')],
      ]);
    } finally {
      for (const [name, listener] of listeners) unsubscribe(name, listener);
    }
  });

  it('publishes an overwrite on rrxc:response:overwritten', async () => {
    const seen: unknown[] = [];
    const listener = (message: unknown): void => void seen.push(message);
    subscribe(CHANNELS.responseOverwritten, listener);
    try {
      const controller = make();
      const exchange = controller.createExchange();
      const { correlationId } = exchange.registerRequest();
      await controller.registerResponse({ correlationId, message: 'first' });
      expect(seen).toEqual([]);
      expect(await controller.registerResponse({ correlationId, message: 'second', overwrite: true })).toBe('overwritten');
      expect(seen).toEqual([{ controller, correlationId, outcome: 'overwritten', exchange }]);
    } finally {
      unsubscribe(CHANNELS.responseOverwritten, listener);
    }
  });

  it('publishes the reply that completes an exchange before the exchange\'s end, naming the exchange', async () => {
    const seen: [string, unknown][] = [];
    const names = [CHANNELS.responseDelivered, CHANNELS.exchangeEnded];
    const listeners = names.map((name) => {
      const listener = (message: unknown): void => void seen.push([name, (message as { exchange: unknown }).exchange]);
      subscribe(name, listener);
      return [name, listener] as const;
    });
    try {
      const controller = make();
      const exchange = controller.createExchange();
      const { correlationId } = exchange.registerRequest();
      const waiting = exchange.wait();
      expect(await controller.registerResponse({ correlationId, message: 'last' })).toBe('delivered');
      expect((await waiting).status).toBe('completed');
      expect(seen).toEqual([
        [CHANNELS.responseDelivered, exchange],
        [CHANNELS.exchangeEnded, exchange],
      ]);
    } finally {
      for (const [name, listener] of listeners) unsubscribe(name, listener);
    }
  });

  it('documents every channel in docs/guide.md', () => {
    const guide = readFileSync(new URL('../../docs/guide.md', import.meta.url), 'utf8');
    for (const [key, name] of Object.entries(CHANNELS)) expect(guide, key).toContain(`| \`${name}\` (\`${key}\`) |`);
  });
});
