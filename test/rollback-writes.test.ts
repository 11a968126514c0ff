import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNELS, Controller, TagStoreError, type TagStore, type TagStoreErrorMessage } from '../src/index.js';
import { ManualClock } from './helpers/manual-clock.js';

/** An asynchronous store whose tag writes never answer. */
const hangingStore: TagStore = {
  tag: () => new Promise<void>(() => {}),
  claim: () => new Promise<string | undefined>(() => {}),
  untag: () => Promise.resolve(false),
  getTags: () => Promise.resolve([]),
};

describe('rollback tag writes to an asynchronous store', () => {
  const reports: TagStoreErrorMessage[] = [];
  const onReport = (message: unknown): void => void reports.push(message as TagStoreErrorMessage);
  afterEach(() => {
    unsubscribe(CHANNELS.tagStoreError, onReport);
    reports.length = 0;
  });

  it('bound an exchange’s writes with one storeTimeout, not a timer per ID, and report every ID when it passes', async () => {
    subscribe(CHANNELS.tagStoreError, onReport);
    const clock = new ManualClock();
    const controller = new Controller<string, string>({ tagStore: hangingStore, storeTimeout: 50, clock });
    const xc = controller.createExchange();
    const ids = Array.from({ length: 100 }, () => xc.registerRequest().correlationId);
    xc.close();
    expect(clock.pending).toBe(1);
    // Until the writes settle or time out, a late reply is still rolled back.
    expect(await controller.registerResponse({ correlationId: ids[7]!, message: 'late' })).toBe('rolled-back');

    clock.advance(50);
    const result = await xc.wait();
    expect(result.unanswered).toEqual(ids);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.correlationIds).toEqual(ids);
    expect(reports[0]!.error).toBeInstanceOf(TagStoreError);
    expect((reports[0]!.error as Error).message).toMatch(/storeTimeout \(50 ms\)/);
    expect(clock.pending).toBe(0);
    await controller.close();
  });
});
