import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { CHANNELS, Controller, type ResponseOutcome } from '../../src/index.js';
import { closeControllersAfterEach, make } from '../helpers/controllers.js';

closeControllersAfterEach();

describe('onRollback', () => {
  it('is called once per ended exchange with unanswered IDs, after they were tagged', async () => {
    const calls: [readonly string[], string, boolean][] = [];
    let controller!: Controller<string, string>;
    controller = make({
      onRollback: async (ids, result) => {
        calls.push([ids, result.status, await controller.isRolledBack(ids[0]!)]);
      },
    });
    const xc = controller.createExchange();
    xc.registerRequest({ correlationId: 'lost' });
    const answered = controller.createExchange();
    const { correlationId } = answered.registerRequest();
    await controller.registerResponse({ correlationId, message: 'ok' });
    await answered.wait();
    xc.close();
    xc.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([[['lost'], 'closed', true]]);
  });

  it('reports a hook that throws on rrxc:hook:error and keeps routing', async () => {
    const failures: unknown[] = [];
    const listener = (message: unknown): void => void failures.push((message as { error: unknown }).error);
    subscribe(CHANNELS.hookError, listener);
    try {
      const boom = new Error('boom');
      const controller = make({
        onRollback: () => {
          throw boom;
        },
      });
      const xc = controller.createExchange();
      xc.registerRequest({ correlationId: 'a' });
      xc.close();
      await new Promise((resolve) => setImmediate(resolve));
      expect(failures).toEqual([boom]);
      expect(await controller.registerResponse({ correlationId: 'a', message: 'late' })).toBe('rolled-back');
    } finally {
      unsubscribe(CHANNELS.hookError, listener);
    }
  });

  it('reports a hook that rejects on rrxc:hook:error', async () => {
    const failures: unknown[] = [];
    const listener = (message: unknown): void => void failures.push((message as { error: unknown }).error);
    subscribe(CHANNELS.hookError, listener);
    try {
      const controller = make({ onRollback: () => Promise.reject(new Error('async boom')) });
      const xc = controller.createExchange();
      xc.registerRequest();
      xc.close();
      await new Promise((resolve) => setImmediate(resolve));
      expect(failures).toEqual([expect.objectContaining({ message: 'async boom' })]);
    } finally {
      unsubscribe(CHANNELS.hookError, listener);
    }
  });

  it('survives a hook that re-enters: registerResponse and close() from onRollback', async () => {
    const outcomes: ResponseOutcome[] = [];
    let controller!: Controller<string, string>;
    controller = make({
      onRollback: async (ids) => {
        if (ids[0] !== 'a') return; // the exchanges close() ends call it too
        outcomes.push(await controller.registerResponse({ correlationId: ids[0]!, message: 'from hook' }));
        await controller.close();
      },
    });
    const a = controller.createExchange();
    a.registerRequest({ correlationId: 'a' });
    const b = controller.createExchange();
    b.registerRequest({ correlationId: 'b' });
    a.close();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(outcomes[0]).toBe('rolled-back');
    expect(b.status).toBe('closed');
    expect(controller.openExchanges).toBe(0);
  });
});
