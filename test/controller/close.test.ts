import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Controller, ControllerClosedError, MemoryTagStore } from '../../src/index.js';
import { clock, closeControllersAfterEach, make } from '../helpers/controllers.js';
import { ManualClock } from '../helpers/manual-clock.js';

closeControllersAfterEach();

describe('close()', () => {
  it('settles, rejecting, when the clock throws as an exchange ends, and leaves that exchange open rather than half ended', async () => {
    const time = new ManualClock();
    let broken = false;
    const flaky = {
      now: (): number => {
        if (broken) throw new Error('clock hiccup');
        return time.now();
      },
      setTimeout: (callback: () => void, ms: number): unknown => time.setTimeout(callback, ms),
      clearTimeout: (handle: unknown): void => time.clearTimeout(handle),
    };
    // Not through make(): afterEach would await this close() again.
    const controller = new Controller<string, string>({ clock: flaky });
    const xc = controller.createExchange({ timeout: 1_000 });
    xc.registerRequest();
    broken = true;
    expect(() => xc.registerRequest()).toThrow('clock hiccup');
    await expect(controller.close()).rejects.toThrow('clock hiccup');
    expect([xc.state, controller.openExchanges, controller.pendingRequests]).toEqual(['open', 1, 1]);
    broken = false;
    xc.close();
    expect([xc.state, controller.openExchanges, controller.pendingRequests, time.pending]).toEqual(['ended', 0, 0, 0]);
  });

  it('ends every open exchange with status closed and tags their unanswered IDs', async () => {
    // A store of our own: close() clears the one it made, and its tag methods reject once closed.
    const store = new MemoryTagStore();
    const controller = make({ tagStore: store });
    const a = controller.createExchange({ timeout: 1_000 });
    const b = controller.createExchange();
    a.registerRequest({ correlationId: 'a1' });
    const answered = a.registerRequest({ correlationId: 'a2' });
    b.registerRequest({ correlationId: 'b1' });
    await controller.registerResponse({ correlationId: answered.correlationId, message: 'ok' });
    const results = Promise.all([a.wait(), b.wait()]);
    await controller.close('deploy');
    expect((await results).map((r) => [r.status, r.reason, r.unanswered])).toEqual([
      ['closed', 'deploy', ['a1']],
      ['closed', 'deploy', ['b1']],
    ]);
    expect(store.getTags('a1')).toEqual(['rollback']);
    expect(store.getTags('b1')).toEqual(['rollback']);
    expect(store.getTags('a2')).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('keeps one deadline timer, holding no process open, for exchanges that come one at a time, and stops it on close()', async () => {
    const time = new ManualClock(undefined, { refable: true });
    const controller = new Controller<string, string>({ clock: time, timeout: 1_000 });
    for (let i = 0; i < 3; i++) {
      const exchange = controller.createExchange();
      const { correlationId } = exchange.registerRequest();
      expect(time.held).toBe(1);
      await controller.registerResponse({ correlationId, message: 'ok' });
      await exchange.wait();
      expect(time.held).toBe(0);
    }
    expect(time.armed).toBe(1);
    await controller.close();
    expect(time.pending).toBe(0);
  });

  it('is idempotent and makes every other method throw or reject ControllerClosedError', async () => {
    const controller = make();
    const first = controller.close();
    expect(controller.close()).toBe(first);
    await first;
    expect(() => controller.createExchange()).toThrow(ControllerClosedError);
    expect(() => controller.newCorrelationId()).toThrow(ControllerClosedError);
    await expect(controller.registerResponse({ correlationId: 'x', message: 'y' })).rejects.toMatchObject({ code: 'ERR_RRXC_CONTROLLER_CLOSED' });
    await expect(controller.tag('x', 'y')).rejects.toBeInstanceOf(ControllerClosedError);
    await expect(controller.isRolledBack('x')).rejects.toBeInstanceOf(ControllerClosedError);
    await expect(controller.synchronize({}, () => undefined)).rejects.toBeInstanceOf(ControllerClosedError);
    expect(controller.getExchange('x')).toBeUndefined();
  });

  it('rejects untag() and hasTag() with ControllerClosedError after close()', async () => {
    const controller = make();
    await controller.tag('x', 'y');
    await controller.close();
    await expect(controller.untag('x', 'y')).rejects.toBeInstanceOf(ControllerClosedError);
    await expect(controller.hasTag('x', 'y')).rejects.toBeInstanceOf(ControllerClosedError);
    await expect(controller.hasTag('x')).rejects.toBeInstanceOf(ControllerClosedError);
  });

  it('removes its listeners from a shared signal', async () => {
    const shutdown = new AbortController();
    const controller = make();
    for (let i = 0; i < 50; i++) controller.createExchange({ signal: shutdown.signal });
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1);
    await controller.close();
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
  });

  it('works with await using', async () => {
    let xc;
    {
      await using controller = make();
      xc = controller.createExchange();
    }
    expect(xc.status).toBe('closed');
  });
});
