import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { closeControllersAfterEach, make } from '../helpers/controllers.js';

closeControllersAfterEach();

describe('a shared abort signal', () => {
  it('carries one listener however many exchanges use it, and none once they ended', async () => {
    const shutdown = new AbortController();
    const controller = make();
    const exchanges = Array.from({ length: 100 }, () => controller.createExchange({ signal: shutdown.signal }));
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1);
    for (const xc of exchanges) xc.close();
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
  });

  it('ends every exchange bound to it when it aborts', async () => {
    const shutdown = new AbortController();
    const controller = make();
    const exchanges = Array.from({ length: 3 }, () => controller.createExchange({ signal: shutdown.signal }));
    shutdown.abort('SIGTERM');
    const results = await Promise.all(exchanges.map((xc) => xc.wait()));
    expect(results.map((r) => [r.status, r.reason])).toEqual(Array(3).fill(['aborted', 'SIGTERM']));
    expect(controller.openExchanges).toBe(0);
  });
});
