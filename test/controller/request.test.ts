import { describe, expect, it } from 'vitest';
import { CorrelationIdConflictError, ExchangeEndedError, InvalidArgumentError } from '../../src/index.js';
import { clock, closeControllersAfterEach, make } from '../helpers/controllers.js';

closeControllersAfterEach();

describe('controller.request()', () => {
  it('sends one request stamped with its correlation ID and resolves with its reply', async () => {
    const controller = make();
    const sent: [string, string][] = [];
    const answer = controller.request('2+2', (correlationId, message) => {
      sent.push([correlationId, message]);
      queueMicrotask(() => void controller.registerResponse({ correlationId, message: '4' }));
    });
    expect(await answer).toBe('4');
    expect(sent).toEqual([[expect.stringMatching(/^[\w-]{21}$/), '2+2']]);
    expect([controller.openExchanges, controller.pendingRequests]).toEqual([0, 0]);
  });

  it('keeps a reply that arrives before send has resolved', async () => {
    const controller = make();
    const answer = controller.request('ping', async (correlationId) => {
      expect(await controller.registerResponse({ correlationId, message: 'pong' })).toBe('delivered');
    });
    expect(await answer).toBe('pong');
  });

  it('uses the correlation ID it is given', async () => {
    const controller = make();
    const answer = controller.request('job', (correlationId) => void controller.registerResponse({ correlationId, message: `done ${correlationId}` }), { correlationId: 'order-7' });
    expect(await answer).toBe('done order-7');
  });

  it('rejects with ExchangeEndedError (timed-out) after tagging the ID when no reply comes in time', async () => {
    const controller = make();
    let id = '';
    const answer = controller.request('job', (correlationId) => void (id = correlationId), { timeout: 100 });
    const failed = expect(answer).rejects.toMatchObject({ name: 'ExchangeEndedError', code: 'ERR_RRXC_EXCHANGE_ENDED', status: 'timed-out' });
    await Promise.resolve();
    clock.advance(100);
    await failed;
    await expect(answer).rejects.toBeInstanceOf(ExchangeEndedError);
    expect(await controller.isRolledBack(id)).toBe(true);
    expect(await controller.registerResponse({ correlationId: id, message: 'late' })).toBe('rolled-back');
  });

  it('rejects with the abort reason as cause when its signal aborts', async () => {
    const controller = make();
    const abort = new AbortController();
    const answer = controller.request('job', () => abort.abort('client went away'), { signal: abort.signal });
    await expect(answer).rejects.toMatchObject({ status: 'aborted', cause: 'client went away' });
  });

  it('closes the exchange, tags the ID and rethrows when send throws', async () => {
    const controller = make();
    let id = '';
    const broken = new Error('broker down');
    await expect(
      controller.request('job', (correlationId) => {
        id = correlationId;
        throw broken;
      }),
    ).rejects.toBe(broken);
    expect(controller.openExchanges).toBe(0);
    expect(await controller.isRolledBack(id)).toBe(true);
  });

  it('rejects a conflicting correlation ID, a send that is not a function and unknown options with coded errors', async () => {
    const controller = make();
    controller.createExchange().registerRequest({ correlationId: 'taken' });
    await expect(controller.request('job', () => {}, { correlationId: 'taken' })).rejects.toBeInstanceOf(CorrelationIdConflictError);
    await expect(controller.request('job', 42 as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(controller.request('job', () => {}, { timout: 5 } as never)).rejects.toThrow(/unknown option `timout`/);
    expect(controller.openExchanges).toBe(1);
  });
});
