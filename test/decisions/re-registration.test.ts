// An ID the application chose and registers again (a re-consumed batch,
// `order-<offset>`) starts clean: the earlier attempt's decision does not
// decide the retry. Issue #12, item 4.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHANNELS, claimCommitted, Controller, MemoryTagStore, type ControllerOptions, type ExchangeResult, type TagStore } from '../../src/index.js';
import { RedisTagStore } from '../../src/redis/index.js';
import { closeControllersAfterEach, controllers } from '../helpers/controllers.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { redisForFile } from '../helpers/redis-for-file.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { uniquePrefix } from '../helpers/redis-server.js';

closeControllersAfterEach();
const redis = redisForFile();

const stores: { name: string; make: () => Promise<{ store: TagStore; done: () => Promise<void> }> }[] = [
  { name: 'MemoryTagStore', make: async () => ({ store: new MemoryTagStore(), done: async () => {} }) },
  {
    name: 'RedisTagStore',
    make: async () => {
      const prefix = uniquePrefix('re-registration');
      const store = new RedisTagStore({ redis: redis.connection, prefix });
      return { store, done: () => deleteKeys(redis.connection, prefix) };
    },
  },
];

describe.each(stores)('re-registering an ID on $name', ({ make }) => {
  let store: TagStore;
  let done: () => Promise<void>;
  let clock: ManualClock;
  beforeEach(async () => {
    ({ store, done } = await make());
    clock = new ManualClock();
  });
  afterEach(() => done());

  function controllerOn(tagStore: TagStore, options: ControllerOptions<string, string> = {}): Controller<string, string> {
    const controller = new Controller<string, string>({ tagStore, clock, ...options });
    controllers.push(controller);
    return controller;
  }

  /** An attempt under `id` whose reply does not come: its exchange times out after `during` ran. */
  async function timedOut(controller: Controller<string, string>, id: string, during?: () => Promise<unknown>): Promise<ExchangeResult<string, string>> {
    const xc = controller.createExchange({ timeout: 100 });
    void xc.registerRequest({ correlationId: id }).response.catch(() => {});
    await during?.();
    clock.advance(100);
    return xc.wait();
  }

  it("answers the retry, and reports the first attempt's straggler `unmatched` after the duplicate window, never `rolled-back`", async () => {
    const controller = controllerOn(store, { duplicateWindow: 1_000 });
    expect((await timedOut(controller, 'order-9')).unanswered).toEqual(['order-9']);
    expect(await controller.isRolledBack('order-9')).toBe(true);

    // The batch is consumed again with the same IDs; this time the reply comes.
    const retry = controller.createExchange({ timeout: 100 });
    const handle = retry.registerRequest({ correlationId: 'order-9', message: 'again' });
    expect(await controller.registerResponse({ correlationId: 'order-9', message: 'reserved' })).toBe('delivered');
    expect(await handle.response).toBe('reserved');
    expect((await retry.wait()).complete).toBe(true);
    expect(await controller.isRolledBack('order-9')).toBe(false);

    // Past the duplicate window (answered IDs are kept in two generations: up to twice the window).
    clock.advance(2_001);
    expect(await controller.registerResponse({ correlationId: 'order-9', message: 'straggler of the first attempt' })).toBe('unmatched');
  });

  it("keeps the first attempt's committed claim: the retry's worker is told the work is done, and the retry's end reports it committed", async () => {
    const controller = controllerOn(store);
    const first = await timedOut(controller, 'order-10', async () => expect(await claimCommitted(store, 'order-10')).toBe('won'));
    expect(first.committed).toEqual(['order-10']);
    const retry = await timedOut(controller, 'order-10', async () => expect(await claimCommitted(store, 'order-10')).toBe('committed'));
    expect(retry).toMatchObject({ unanswered: [], committed: ['order-10'] });
  });

  it("claims the retry's rollback only after the earlier rollback tag is gone, whatever order the store keeps", async () => {
    const controller = controllerOn(store);
    await timedOut(controller, 'order-11');
    // The retry ends at once, before its clean start can have reached an asynchronous store.
    const retry = controller.createExchange({ timeout: 100 });
    void retry.registerRequest({ correlationId: 'order-11' }).response.catch(() => {});
    retry.close();
    expect(await retry.wait()).toMatchObject({ unanswered: ['order-11'] });
    expect(await controller.isRolledBack('order-11')).toBe(true);
    expect(await claimCommitted(store, 'order-11')).toBe('rolled-back');
  });

  it("does not claim the earlier attempt's undecided rollback once the ID is registered again", async () => {
    let down = true;
    const flaky: TagStore = {
      tag: (id, tag, ttl) => store.tag(id, tag, ttl),
      untag: (id, tag) => store.untag(id, tag),
      getTags: (id) => store.getTags(id),
      claim: async (id, tag, ttl, rivals) => {
        if (down) throw new Error('store down');
        return store.claim(id, tag, ttl, rivals);
      },
    };
    const controller = controllerOn(flaky);
    const ignore = (): void => {};
    subscribe(CHANNELS.tagStoreError, ignore);
    try {
      expect((await timedOut(controller, 'order-12')).undecided).toEqual(['order-12']);
      down = false;
      const retry = controller.createExchange({ timeout: 100 });
      const handle = retry.registerRequest({ correlationId: 'order-12' });
      expect(await controller.registerResponse({ correlationId: 'order-12', message: 'reserved' })).toBe('delivered');
      await handle.response;
      expect((await retry.wait()).complete).toBe(true);
      // When the background retry of the first attempt's claim would have come.
      clock.advance(1_000);
      for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(await controller.isRolledBack('order-12')).toBe(false);
    } finally {
      unsubscribe(CHANNELS.tagStoreError, ignore);
    }
  });
});
