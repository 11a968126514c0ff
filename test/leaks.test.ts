/**
 * Leak tests on the real clock: many exchanges created and ended must leave
 * no timer, no abort listener and no heap behind. Run with --expose-gc
 * (vitest.config.ts passes it).
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Controller } from '../src/index.js';

const COUNT = 100_000;

function collect(): number {
  for (let i = 0; i < 3; i++) globalThis.gc!();
  return process.memoryUsage().heapUsed;
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('leaks', () => {
  it('has gc exposed', () => {
    expect(typeof globalThis.gc).toBe('function');
  });

  it(`leaves heap, timers and abort listeners at baseline after ${COUNT} exchanges ended every way`, async () => {
    const shutdown = new AbortController();
    const timersBefore = timers();
    // Bounded stores: what they legitimately keep must not look like a leak.
    const controller = new Controller<number, number>({ maxTags: 1_000, maxDuplicates: 1_000, timeout: 60_000 });
    const userSignals: AbortSignal[] = [];

    async function cycle(count: number): Promise<void> {
      for (let i = 0; i < count; i++) {
        const own = i % 4 === 2 ? new AbortController() : undefined;
        const xc = controller.createExchange({ signal: own?.signal ?? shutdown.signal });
        const handle = xc.registerRequest({ message: i });
        switch (i % 4) {
          case 0: // answered
            await controller.registerResponse({ correlationId: handle.correlationId, message: i });
            await xc.wait();
            break;
          case 1: // closed, its response awaited
            xc.close('done');
            await handle.response.catch(() => undefined);
            break;
          case 2: // aborted by its own signal
            own!.abort('gone');
            if (i % 1_000 === 2) userSignals.push(own!.signal);
            break;
          case 3: // closed, its response made but never awaited
            void handle.response;
            xc.close();
            break;
        }
      }
    }

    // The warm-up fills the bounded stores and compiles the code paths, so
    // the baseline holds everything that is meant to stay.
    await cycle(10_000);
    const baseline = collect();
    await cycle(COUNT);
    const after = collect();

    expect(controller.openExchanges).toBe(0);
    expect(controller.pendingRequests).toBe(0);
    expect(timers()).toBe(timersBefore);
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    for (const signal of userSignals) expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    // 100 000 leaked exchanges would be tens of MB; allow 1 MB of noise.
    expect(after - baseline).toBeLessThan(1024 * 1024);

    await controller.close();
    expect(timers()).toBe(timersBefore);
  });

  it('keeps nothing of the last exchange once its caller let go of it', async () => {
    const controller = new Controller<object, object>();
    let message: WeakRef<object>;
    await (async () => {
      const answer = { big: new Array(1_000).fill(0) };
      message = new WeakRef(answer);
      const xc = controller.createExchange();
      const { correlationId } = xc.registerRequest({});
      const waited = xc.wait();
      await controller.registerResponse({ correlationId, message: answer });
      await waited;
    })();
    await new Promise((resolve) => setImmediate(resolve));
    collect();
    expect(message!.deref()).toBeUndefined();
    await controller.close();
  });

  it('gives the memory of many exchanges open at once back when they end', async () => {
    // Bounded stores (the IDs end unanswered and are tagged): what they keep is not a leak.
    const controller = new Controller<number, number>({ maxTags: 1_000, maxDuplicates: 1_000, timeout: 60_000 });
    const open = (n: number) => Array.from({ length: n }, () => controller.createExchange());
    for (const xc of open(2_000)) xc.close(); // compiles the paths
    const baseline = collect();
    const exchanges = open(300_000);
    for (const xc of exchanges) xc.registerRequest({ message: 1 });
    for (const xc of exchanges) xc.close();
    exchanges.length = 0;
    const after = collect();
    // What held 300 000 open (the open set, the index, the deadline lane)
    // must shrink again: 8 bytes a slot kept would be 2.4 MB.
    expect(after - baseline).toBeLessThan(1024 * 1024);
    await controller.close();
  });

  it('arms one timer per distinct timeout, none per request, and none after close()', async () => {
    const before = timers();
    const controller = new Controller({ timeout: 60_000 });
    for (let i = 0; i < 1_000; i++) controller.createExchange({ timeout: 60_000 + (i % 3) }).registerRequest();
    expect(timers()).toBe(before + 3);
    await controller.close();
    expect(timers()).toBe(before);
  });

  it('holds the process open with no timer once its exchanges ended, before close() too', async () => {
    const before = timers();
    const controller = new Controller<number, number>({ timeout: 60_000 });
    for (let i = 0; i < 3; i++) {
      const exchange = controller.createExchange();
      const { correlationId } = exchange.registerRequest({ message: i });
      expect(timers()).toBe(before + 1);
      await controller.registerResponse({ correlationId, message: i });
      await exchange.wait();
      // The lane's timer may still be scheduled, for the next exchange, but unref'd.
      expect(timers()).toBe(before);
    }
    await controller.close();
  });

  it('keeps one abort listener on a shared signal for 100 000 open exchanges', async () => {
    const shutdown = new AbortController();
    const controller = new Controller();
    for (let i = 0; i < COUNT; i++) controller.createExchange({ signal: shutdown.signal });
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1);
    shutdown.abort('SIGTERM');
    expect(controller.openExchanges).toBe(0);
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    await controller.close();
  });
});
