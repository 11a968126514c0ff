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

describe('rollback claims on an asynchronous store', () => {
  const reports: TagStoreErrorMessage[] = [];
  const onReport = (message: unknown): void => void reports.push(message as TagStoreErrorMessage);
  afterEach(() => {
    unsubscribe(CHANNELS.tagStoreError, onReport);
    reports.length = 0;
  });

  it('bound an exchange’s claims with one storeTimeout, not a timer per ID, and report every ID undecided when it passes', async () => {
    subscribe(CHANNELS.tagStoreError, onReport);
    const clock = new ManualClock();
    const controller = new Controller<string, string>({ tagStore: hangingStore, storeTimeout: 50, clock });
    const xc = controller.createExchange();
    const ids = Array.from({ length: 100 }, () => xc.registerRequest().correlationId);
    xc.close();
    expect(clock.pending).toBe(1);
    // A late reply waits for the claim; when it cannot be made, the reply claims again, as boundedly.
    const late = controller.registerResponse({ correlationId: ids[7]!, message: 'late' });

    clock.advance(50);
    const result = await xc.wait();
    expect(result).toMatchObject({ unanswered: [], committed: [], undecided: ids });
    expect(reports).toHaveLength(1);
    expect(reports[0]!.correlationIds).toEqual(ids);
    expect(reports[0]!.error).toBeInstanceOf(TagStoreError);
    expect((reports[0]!.error as Error).message).toMatch(/storeTimeout \(50 ms\)/);
    // The late reply's own claim, and the background retry of the undecided IDs.
    expect(clock.pending).toBe(2);
    clock.advance(50);
    await expect(late).rejects.toBeInstanceOf(TagStoreError);
    expect(clock.pending).toBe(1);
    await controller.close();
    expect(clock.pending).toBe(0);
    expect(reports.at(-1)!.correlationIds).toEqual(ids);
    await controller.close();
  });
});
