import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { CHANNELS, Controller, InvalidArgumentError, MemoryTagStore, TagStoreError, type TagStore } from '../../src/index.js';
import { flush, GatedTagStore } from '../helpers/gated-tag-store.js';
import { THREE_HOURS, clock, closeControllersAfterEach, controllers, make, resetClock } from '../helpers/controllers.js';

closeControllersAfterEach();

describe('tags', () => {
  it('tags, looks up and untags IDs', async () => {
    const controller = make();
    await controller.tag('order-1', 'paid');
    await controller.tag('order-1', 'shipped', { ttl: 100 });
    expect(await controller.hasTag('order-1', 'paid')).toBe(true);
    expect(await controller.hasTag('order-1', 'paid', 'shipped')).toBe(true);
    expect(await controller.hasTag('order-1', 'paid', 'refunded')).toBe(false);
    clock.advance(100);
    expect(await controller.hasTag('order-1', 'shipped')).toBe(false);
    expect(await controller.untag('order-1', 'paid')).toBe(true);
    expect(await controller.untag('order-1', 'paid')).toBe(false);
  });

  it('answers hasTag(id) with no tags as "has no tags at all"', async () => {
    const controller = make();
    expect(await controller.hasTag('fresh')).toBe(true);
    await controller.tag('fresh', 'x');
    expect(await controller.hasTag('fresh')).toBe(false);
  });

  it('tags with rollbackTtl by default', async () => {
    const controller = make();
    await controller.tag('a', 'rollback');
    clock.advance(THREE_HOURS - 1);
    expect(await controller.isRolledBack('a')).toBe(true);
    clock.advance(1);
    expect(await controller.isRolledBack('a')).toBe(false);
  });

  it('uses a custom rollbackTag', async () => {
    const controller = make({ rollbackTag: 'compensate' });
    const xc = controller.createExchange();
    xc.registerRequest({ correlationId: 'r' });
    xc.close();
    expect(await controller.hasTag('r', 'compensate')).toBe(true);
    expect(await controller.isRolledBack('r')).toBe(true);
    expect(await controller.hasTag('r', 'rollback')).toBe(false);
  });

  it('rejects bad tag arguments', async () => {
    const controller = make();
    await expect(controller.tag('', 'x')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(controller.tag('a', 7 as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(controller.tag('a', 'x', { ttl: -1 })).rejects.toThrow(/ttl must be a finite number/);
    await expect(controller.tag('a', 'x', { tll: 5 } as never)).rejects.toThrow(/unknown option `tll`/);
    await expect(controller.hasTag('a', '')).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('publishes the eviction of an ID with a live tag on rrxc:tag:evicted', async () => {
    const evicted: unknown[] = [];
    const listener = (message: unknown): void => void evicted.push(message);
    subscribe(CHANNELS.tagEvicted, listener);
    try {
      const controller = make({ maxTags: 2 });
      for (const id of ['a', 'b', 'c']) await controller.tag(id, 'rollback');
      expect(evicted).toEqual([{ correlationId: 'a', tags: ['rollback'] }]);
      expect(await controller.isRolledBack('a')).toBe(false);
      expect(await controller.isRolledBack('c')).toBe(true);
    } finally {
      unsubscribe(CHANNELS.tagEvicted, listener);
    }
  });
});

describe('maxTags', () => {
  it('keeps 100 000 tags by default, the least recently used going first', async () => {
    const controller = make();
    for (let i = 0; i <= 100_000; i++) await controller.tag(`t${i}`, 'x');
    expect(await controller.hasTag('t0', 'x')).toBe(false);
    expect(await controller.hasTag('t1', 'x')).toBe(true);
    expect(await controller.hasTag('t100000', 'x')).toBe(true);
  });

  it('evicts the least recently used ID: a look-up counts as a use', async () => {
    const controller = make({ maxTags: 2 });
    await controller.tag('a', 'x');
    await controller.tag('b', 'x');
    expect(await controller.hasTag('a', 'x')).toBe(true); // a is now used more recently than b
    await controller.tag('c', 'x');
    expect(await controller.hasTag('b')).toBe(true); // b has no tag at all any more
    expect(await controller.hasTag('a', 'x')).toBe(true);
    expect(await controller.hasTag('c', 'x')).toBe(true);
  });
});

describe('an asynchronous tag store', () => {
  /** MemoryTagStore answering every call a tick later, as a networked store would. */
  class SlowStore implements TagStore {
    readonly #inner = new MemoryTagStore();
    delay = 5;
    writeDelay = 5;
    fail = false;
    #later<T>(value: () => T, delay = this.delay): Promise<T> {
      return new Promise((resolve, reject) => setTimeout(() => (this.fail ? reject(new Error('store down')) : resolve(value())), delay));
    }
    tag(id: string, tag: string, ttl: number): Promise<void> {
      return this.#later(() => this.#inner.tag(id, tag, ttl), this.writeDelay);
    }
    claim(id: string, tag: string, ttl: number, rivals: readonly string[]): Promise<string | undefined> {
      return this.#later(() => this.#inner.claim(id, tag, ttl, rivals), this.writeDelay);
    }
    untag(id: string, tag: string): Promise<boolean> {
      return this.#later(() => this.#inner.untag(id, tag));
    }
    getTags(id: string): Promise<readonly string[]> {
      return this.#later(() => this.#inner.getTags(id));
    }
  }

  it('rethrows from synchronize() only once the rollback tags are written', async () => {
    const store = new SlowStore();
    store.writeDelay = 30;
    const controller = new Controller<string, string>({ tagStore: store });
    controllers.push(controller);
    resetClock();
    const boom = new Error('boom');
    await expect(
      controller.synchronize({}, (xc) => {
        xc.registerRequest({ correlationId: 'thrown' });
        throw boom;
      }),
    ).rejects.toBe(boom);
    // Asked of the store itself: the controller would already say rolled-back while writing.
    store.delay = 0;
    expect(await store.getTags('thrown')).toEqual(['rollback']);
  });

  it('reports rolled-back while the rollback tag is still being written', async () => {
    const store = new SlowStore();
    store.delay = 1;
    store.writeDelay = 50;
    const controller = new Controller<string, string>({ tagStore: store });
    controllers.push(controller);
    resetClock();
    const xc = controller.createExchange();
    xc.registerRequest({ correlationId: 'in-flight' });
    xc.close();
    expect(await controller.registerResponse({ correlationId: 'in-flight', message: 'late' })).toBe('rolled-back');
    await xc.wait();
    expect(await controller.isRolledBack('in-flight')).toBe(true);
  });

  it('resolves wait() only once the rollback claims are decided, and a late reply meanwhile waits for the claim', async () => {
    const store = new GatedTagStore();
    const controller = make({ tagStore: store });
    const xc = controller.createExchange();
    xc.registerRequest({ correlationId: 'w' });
    xc.close();
    let settled = false;
    const waiting = xc.wait().then((result) => {
      settled = true;
      return result;
    });
    let late: string | undefined;
    try {
      await flush();
      expect(xc.status).toBe('closed');
      expect(store.pendingWrites).toBe(1);
      expect(settled).toBe(false);
      void controller.registerResponse({ correlationId: 'w', message: 'late' }).then((outcome) => (late = outcome));
      await flush();
      expect(late).toBeUndefined();
    } finally {
      store.release();
    }
    expect((await waiting).unanswered).toEqual(['w']);
    expect(late).toBe('rolled-back');
    expect(store.inner.getTags('w')).toEqual(['rollback']);
  });

  it('tells a late reply `committed`, not `rolled-back`, when the worker claimed the ID while the end claimed it', async () => {
    const store = new GatedTagStore();
    const controller = make({ tagStore: store });
    const xc = controller.createExchange();
    xc.registerRequest({ correlationId: 'raced' });
    xc.close();
    await flush();
    // The worker's claim reaches the store first; the end's is still held.
    store.inner.claim('raced', 'committed', 60_000, ['rollback']);
    const late = controller.registerResponse({ correlationId: 'raced', message: 'late' });
    store.release();
    const result = await xc.wait();
    expect(result).toMatchObject({ unanswered: [], committed: ['raced'], undecided: [] });
    expect(await late).toBe('committed');
  });

  it('rejects with TagStoreError when the store fails a look-up', async () => {
    const store = new SlowStore();
    store.fail = true;
    const controller = new Controller<string, string>({ tagStore: store });
    controllers.push(controller);
    resetClock();
    const error = await controller.registerResponse({ correlationId: 'x', message: 'y' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TagStoreError);
    expect(error).toMatchObject({ code: 'ERR_RRXC_TAG_STORE', operation: 'getTags', cause: expect.objectContaining({ message: 'store down' }) });
  });

  it('times its calls with an injected clock written as a class', async () => {
    const store = new SlowStore();
    store.delay = 1_000_000;
    resetClock();
    const controller = new Controller<string, string>({ tagStore: store, storeTimeout: 50, clock });
    controllers.push(controller);
    const looking = controller.registerResponse({ correlationId: 'x', message: 'y' }).catch((e: unknown) => e);
    clock.advance(50);
    const error = await looking;
    expect(error).toBeInstanceOf(TagStoreError);
    // The store timed out on the injected clock — not a TypeError from calling its methods unbound.
    expect((error as Error).message).toBe('tag store getTags() failed: no answer within storeTimeout (50 ms)');
  });

  it('waits in close() for rollback writes a hook started while exchanges were ending', async () => {
    const store = new SlowStore();
    store.writeDelay = 30;
    resetClock();
    const controller = new Controller<string, string>({ tagStore: store, clock });
    const xc = controller.createExchange();
    xc.registerRequest({ correlationId: 'from-hook' });
    let closing: Promise<void> | undefined;
    xc.signal.addEventListener('abort', () => (closing = controller.close()));
    xc.close();
    await closing;
    expect(await store.getTags('from-hook')).toEqual(['rollback']);
  });

  it('rejects with TagStoreError when the store does not answer within storeTimeout', async () => {
    const store = new SlowStore();
    store.delay = 200;
    const controller = new Controller<string, string>({ tagStore: store, storeTimeout: 20 });
    controllers.push(controller);
    resetClock();
    const error = await controller.registerResponse({ correlationId: 'x', message: 'y' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TagStoreError);
    expect((error as Error).message).toMatch(/storeTimeout \(20 ms\)/);
    await new Promise((resolve) => setTimeout(resolve, 200)); // let the store's own timer finish
  });

  it('publishes a failed rollback write on rrxc:tag-store:error and still ends the exchange', async () => {
    const failures: unknown[] = [];
    const listener = (message: unknown): void => void failures.push(message);
    subscribe(CHANNELS.tagStoreError, listener);
    try {
      const store = new SlowStore();
      store.fail = true;
      const controller = new Controller<string, string>({ tagStore: store });
      controllers.push(controller);
      resetClock();
      const xc = controller.createExchange();
      xc.registerRequest();
      xc.close();
      const result = await xc.wait();
      expect(result).toMatchObject({ status: 'closed', unanswered: [], undecided: [result.entries[0]!.correlationId] });
      expect(failures).toEqual([
        expect.objectContaining({ correlationIds: result.undecided, error: expect.objectContaining({ operation: 'claim', cause: expect.objectContaining({ message: 'store down' }) }) }),
      ]);
    } finally {
      unsubscribe(CHANNELS.tagStoreError, listener);
    }
  });

  it('waits for rollback writes in close()', async () => {
    const store = new SlowStore();
    store.writeDelay = 30;
    const controller = new Controller<string, string>({ tagStore: store });
    resetClock();
    controller.createExchange().registerRequest({ correlationId: 'c' });
    await controller.close();
    expect(await store.getTags('c')).toEqual(['rollback']);
  });
});
