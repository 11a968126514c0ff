import { describe, expect, it } from 'vitest';
import { CapacityError } from '../../src/index.js';
import { closeControllersAfterEach, make } from '../helpers/controllers.js';

closeControllersAfterEach();

describe('capacity', () => {
  it('accepts 1 000 000 pending requests by default and throws CapacityError on one more', () => {
    // About 2 s and 300 MB; a no-op tag store keeps close() from tagging a million IDs.
    const controller = make({ tagStore: { tag: () => undefined, untag: () => false, getTags: () => [], claim: () => undefined } });
    const xc = controller.createExchange();
    for (let i = 0; i < 1_000_000; i++) xc.registerRequest({ correlationId: i.toString(36) });
    expect(controller.pendingRequests).toBe(1_000_000);
    expect(() => controller.createExchange().registerRequest({ correlationId: 'one-more' })).toThrow(
      expect.objectContaining({ code: 'ERR_RRXC_CAPACITY', limit: 1_000_000 }),
    );
    xc.close();
  });

  it('throws CapacityError past maxPendingRequests and accepts again once requests end', () => {
    const controller = make({ maxPendingRequests: 2 });
    const xc = controller.createExchange();
    xc.registerRequest();
    xc.registerRequest();
    const other = controller.createExchange();
    expect(() => other.registerRequest()).toThrow(CapacityError);
    expect(() => other.registerRequest()).toThrow(expect.objectContaining({ code: 'ERR_RRXC_CAPACITY', limit: 2 }));
    xc.close();
    expect(() => other.registerRequest()).not.toThrow();
  });

  it('reports a full index before a conflicting ID: the capacity is what the caller must act on', () => {
    const controller = make({ maxPendingRequests: 1 });
    controller.createExchange().registerRequest({ correlationId: 'job-1' });
    expect(() => controller.createExchange().registerRequest({ correlationId: 'job-1' })).toThrow(CapacityError);
  });
});
