/**
 * Races a user meets in production, each pinned by name: a reply in the same
 * tick as the end of its exchange, on the real event loop or, where the order
 * must be chosen, on a ManualClock.
 */
import { describe, expect, it } from 'vitest';
import { Controller, ExchangeEndedError, type ResponseOutcome } from '../src/index.js';
import { ManualClock } from './helpers/manual-clock.js';

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

  it('a reply in the same tick as the timeout: delivered or rolled back, never both, in either order', async () => {
    for (const replyFirst of [true, false]) {
      // Both timers fall due at the same instant; the ManualClock fires them in the order they were set.
      const clock = new ManualClock();
      const controller = new Controller<string, string>({ clock, timeout: 5 });
      let outcome: Promise<ResponseOutcome> | undefined;
      let correlationId = '';
      const reply = (): void => void (outcome = controller.registerResponse({ correlationId, message: 'x' }));
      if (replyFirst) clock.setTimeout(reply, 5);
      const xc = controller.createExchange();
      const handle = xc.registerRequest();
      correlationId = handle.correlationId;
      if (!replyFirst) clock.setTimeout(reply, 5);
      const settled = handle.response.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      clock.advance(5);
      const result = await xc.wait();
      expect(result.status).toBe('timed-out');
      if (replyFirst) {
        expect(await outcome).toBe('delivered');
        expect(await settled).toEqual({ value: 'x' });
        expect(result.entries[0]!.answered).toBe(true);
        expect(result.unanswered).toEqual([]);
        expect(await controller.isRolledBack(correlationId)).toBe(false);
      } else {
        expect(await outcome).toBe('rolled-back');
        const { error } = (await settled) as { error: unknown };
        expect(error).toBeInstanceOf(ExchangeEndedError);
        expect(error).toMatchObject({ status: 'timed-out' });
        expect(result.entries[0]!.answered).toBe(false);
        expect(result.unanswered).toEqual([correlationId]);
        expect(await controller.isRolledBack(correlationId)).toBe(true);
      }
      await controller.close();
      expect(clock.pending).toBe(0);
    }
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
