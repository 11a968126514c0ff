/**
 * Races a user meets in production, each pinned by name: a reply in the same
 * tick as the end of its exchange, on the real event loop.
 */
import { describe, expect, it } from 'vitest';
import { Controller, ExchangeEndedError, type ResponseOutcome } from '../src/index.js';

describe('races', () => {
  it('a reply in the same tick as an abort: whichever runs first wins, and the other agrees', async () => {
    for (const replyFirst of [true, false]) {
      const controller = new Controller<string, string>();
      const ac = new AbortController();
      const xc = controller.createExchange({ signal: ac.signal });
      const handle = xc.registerRequest();
      const settled = handle.response.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      let outcome: Promise<ResponseOutcome>;
      if (replyFirst) {
        outcome = controller.registerResponse({ correlationId: handle.correlationId, message: 'just in time' });
        ac.abort('client left');
      } else {
        ac.abort('client left');
        outcome = controller.registerResponse({ correlationId: handle.correlationId, message: 'too late' });
      }
      const result = await xc.wait();
      expect(result.status).toBe('aborted');
      if (replyFirst) {
        expect(await outcome).toBe('delivered');
        expect(await settled).toEqual({ value: 'just in time' });
        expect(result.unanswered).toEqual([]);
        expect(await controller.isRolledBack(handle.correlationId)).toBe(false);
      } else {
        expect(await outcome).toBe('rolled-back');
        expect((await settled as { error: unknown }).error).toBeInstanceOf(ExchangeEndedError);
        expect(result.unanswered).toEqual([handle.correlationId]);
      }
      await controller.close();
    }
  });

  it('a reply in the same tick as the timeout: delivered or rolled back, never both', async () => {
    const controller = new Controller<string, string>({ timeout: 5 });
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        const xc = controller.createExchange();
        const { correlationId } = xc.registerRequest();
        // Scheduled for the same timer tick as the exchange's own deadline.
        const outcome = await new Promise<ResponseOutcome>((resolve) =>
          setTimeout(() => resolve(controller.registerResponse({ correlationId, message: 'x' })), 5),
        );
        const result = await xc.wait();
        const delivered = result.entries[0]!.answered;
        expect(outcome).toBe(delivered ? 'delivered' : 'rolled-back');
        expect(result.unanswered.length).toBe(delivered ? 0 : 1);

      }),
    );
    await controller.close();
  });

  it('a reply during close(): delivered before it, rolled back after it, the controller closed for the rest', async () => {
    const controller = new Controller<string, string>();
    const xc = controller.createExchange();
    const a = xc.registerRequest();
    const b = xc.registerRequest();
    const first = controller.registerResponse({ correlationId: a.correlationId, message: 'a' });
    const closing = controller.close();
    const second = controller.registerResponse({ correlationId: b.correlationId, message: 'b' });
    expect(await first).toBe('delivered');
    await expect(second).rejects.toMatchObject({ code: 'ERR_RRXC_CONTROLLER_CLOSED' });
    await closing;
    expect((await xc.wait()).unanswered).toEqual([b.correlationId]);
  });

  it('wait() called twice and a reply before either: one result, completed', async () => {
    const controller = new Controller<string, string>();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'early' });
    const [one, two] = await Promise.all([xc.wait(), xc.wait()]);
    expect(one).toBe(two);
    expect(one.status).toBe('completed');
    await controller.close();
  });
});
