// The requester's end and the worker race to settle one ID: exactly one wins,
// and the requester's result says which. Issue #12, items 5 and 6.
import { spawn } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNELS, claimCommitted, Controller, type TagStoreErrorMessage, MemoryTagStore, TagStoreError, type TagStore } from '../../src/index.js';
import { RedisTagStore } from '../../src/redis/index.js';
import { clock, closeControllersAfterEach, make, THREE_HOURS } from '../helpers/controllers.js';
import { redisForFile } from '../helpers/redis-for-file.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { uniquePrefix } from '../helpers/redis-server.js';

closeControllersAfterEach();
const redis = redisForFile();

describe('the worker claims committed before the requester gives up', () => {
  it('keeps the ID out of rollback: result.committed lists it, a late reply is `committed`, onRollback is not called', async () => {
    const store = new MemoryTagStore();
    const rolledBack: string[][] = [];
    const controller = make({ tagStore: store, onRollback: (ids) => void rolledBack.push([...ids]) });
    const xc = controller.createExchange({ timeout: 100 });
    const done = xc.registerRequest({ correlationId: 'order-1' });
    const lost = xc.registerRequest({ correlationId: 'order-2' });
    void done.response.catch(() => {});
    void lost.response.catch(() => {});
    expect(await claimCommitted(store, 'order-1')).toBe('won');
    clock.advance(100);
    const result = await xc.wait();
    expect(result).toMatchObject({ status: 'timed-out', unanswered: ['order-2'], committed: ['order-1'], undecided: [] });
    expect(await controller.registerResponse({ correlationId: 'order-1', message: 'late' })).toBe('committed');
    expect(await controller.isRolledBack('order-1')).toBe(false);
    expect(await controller.registerResponse({ correlationId: 'order-2', message: 'late' })).toBe('rolled-back');
    await Promise.resolve();
    expect(rolledBack).toEqual([['order-2']]);
  });

  it('tells a worker that comes after the end `rolled-back`, and one that comes again `committed`', async () => {
    const store = new MemoryTagStore();
    const controller = make({ tagStore: store });
    const xc = controller.createExchange({ timeout: 10 });
    void xc.registerRequest({ correlationId: 'late-worker' }).response.catch(() => {});
    clock.advance(10);
    await xc.wait();
    expect(await claimCommitted(store, 'late-worker')).toBe('rolled-back');
    expect(await claimCommitted(store, 'on-time')).toBe('won');
    expect(await claimCommitted(store, 'on-time')).toBe('committed');
  });

  it('uses the tags the controller was given', async () => {
    const store = new MemoryTagStore();
    const controller = make({ tagStore: store, rollbackTag: 'undo', committedTag: 'done' });
    const xc = controller.createExchange({ timeout: 10 });
    void xc.registerRequest({ correlationId: 'x' }).response.catch(() => {});
    expect(await claimCommitted(store, 'x', { committedTag: 'done', rollbackTag: 'undo' })).toBe('won');
    clock.advance(10);
    expect((await xc.wait()).committed).toEqual(['x']);
  });

  it('rejects bad arguments with InvalidArgumentError', async () => {
    const store = new MemoryTagStore();
    await expect(claimCommitted(store, '')).rejects.toMatchObject({ code: 'ERR_RRXC_INVALID_ARGUMENT' });
    await expect(claimCommitted({} as TagStore, 'x')).rejects.toMatchObject({ code: 'ERR_RRXC_INVALID_ARGUMENT' });
    await expect(claimCommitted(store, 'x', { tll: 5 } as never)).rejects.toMatchObject({ code: 'ERR_RRXC_INVALID_ARGUMENT' });
    expect(() => make({ committedTag: 'rollback' })).toThrow(/committedTag and rollbackTag must differ/);
  });
});

describe('controller.claim()', () => {
  it('settles an ID once against its rivals, with the rollback TTL unless given one', async () => {
    const controller = make();
    expect(await controller.claim('job-1', 'compensated')).toBeUndefined();
    expect(await controller.claim('job-1', 'compensated')).toBe('compensated');
    await controller.tag('job-2', 'committed');
    expect(await controller.claim('job-2', 'rollback', { rivals: ['committed'] })).toBe('committed');
    expect(await controller.claim('job-3', 'short', { ttl: 10 })).toBeUndefined();
    clock.advance(10);
    expect(await controller.claim('job-3', 'short')).toBeUndefined();
    clock.advance(THREE_HOURS - 1);
    expect(await controller.hasTag('job-3', 'short')).toBe(true);
  });

  it('rejects bad arguments with InvalidArgumentError, before touching the store', async () => {
    const controller = make();
    for (const [id, tag, options] of [
      ['', 'x', undefined],
      ['a', '', undefined],
      ['a', 'x', { rivals: 'committed' }],
      ['a', 'x', { rivals: [''] }],
      ['a', 'x', { ttl: -1 }],
      ['a', 'x', { tll: 5 }],
    ] as const) {
      await expect(controller.claim(id, tag, options as never)).rejects.toMatchObject({ code: 'ERR_RRXC_INVALID_ARGUMENT' });
    }
    expect(await controller.hasTag('a')).toBe(true);
  });
});

describe('requester and worker racing on one Redis, 1 000 times', () => {
  const stores: RedisTagStore[] = [];
  let prefix = '';
  afterEach(async () => {
    await deleteKeys(redis.connection, prefix);
  });

  it('settles every ID exactly once: committed iff the worker won, tagged iff the end won', async () => {
    prefix = uniquePrefix('claims-race');
    const requesterStore = await RedisTagStore.connect({ url: redis.url, prefix });
    const workerStore = await RedisTagStore.connect({ url: redis.url, prefix });
    stores.push(requesterStore, workerStore);
    const controller = new Controller<string, string>({ tagStore: requesterStore, timeout: 50 });
    try {
      const ids = Array.from({ length: 1_000 }, (_, i) => `race-${i}`);
      const exchanges = ids.map((id) => {
        const xc = controller.createExchange();
        void xc.registerRequest({ correlationId: id }).response.catch(() => {});
        return xc.wait();
      });
      // A third of the workers surely finish first, a third surely after the
      // requester gave up, and a third around its deadline: the race.
      const workers = ids.map((id, i) => {
        const claim = (): Promise<string> => claimCommitted(workerStore, id);
        if (i % 3 === 0) return claim();
        if (i % 3 === 1) return exchanges[i]!.then(claim);
        return new Promise<string>((resolve, reject) => setTimeout(() => claim().then(resolve, reject), Math.random() * 100));
      });
      const [results, decisions] = await Promise.all([Promise.all(exchanges), Promise.all(workers)]);
      let both = 0;
      let neither = 0;
      results.forEach((result, i) => {
        const endWon = result.unanswered.includes(ids[i]!);
        const workerWon = decisions[i] === 'won';
        if (endWon && workerWon) both++;
        if (!endWon && !workerWon) neither++;
        expect(result.committed.includes(ids[i]!)).toBe(workerWon);
        expect(result.undecided).toEqual([]);
      });
      const won = decisions.filter((d) => d === 'won').length;
      expect({ both, neither, won: won > 0, lost: won < ids.length }).toEqual({ both: 0, neither: 0, won: true, lost: true });
    } finally {
      await controller.close();
      for (const store of stores.splice(0)) await store.close();
    }
  });
});

describe('a rollback that cannot be recorded', () => {
  /** A memory store whose claims fail while `down`. */
  class FlakyStore extends MemoryTagStore {
    down = true;
    override claim(id: string, tag: string, ttl: number, rivals: readonly string[]): string | undefined {
      if (this.down) throw new Error('store down');
      return super.claim(id, tag, ttl, rivals);
    }
  }

  it('is `undecided` in the result, rejects a late reply as unknown, and is claimed again once the store is back', async () => {
    const store = new FlakyStore();
    const controller = make({ tagStore: store });
    const xc = controller.createExchange({ timeout: 10 });
    void xc.registerRequest({ correlationId: 'u' }).response.catch(() => {});
    const reports: TagStoreErrorMessage[] = [];
    const onReport = (m: unknown): void => void reports.push(m as TagStoreErrorMessage);
    subscribe(CHANNELS.tagStoreError, onReport);
    try {
      clock.advance(10);
      expect(await xc.wait()).toMatchObject({ unanswered: [], committed: [], undecided: ['u'] });
      await expect(controller.registerResponse({ correlationId: 'u', message: 'late' })).rejects.toBeInstanceOf(TagStoreError);
      expect(await controller.isRolledBack('u')).toBe(false);
      store.down = false;
      // The background retry, a second after the end.
      clock.advance(1_000);
      await new Promise((resolve) => setImmediate(resolve));
      expect(await controller.isRolledBack('u')).toBe(true);
      expect(await controller.registerResponse({ correlationId: 'u', message: 'late' })).toBe('rolled-back');
      expect(reports.map((r) => [(r.error as TagStoreError).operation, r.correlationIds])).toEqual([['claim', ['u']]]);
    } finally {
      unsubscribe(CHANNELS.tagStoreError, onReport);
    }
  });

  it('does not keep a process alive that has nothing else to do', async () => {
    const script = `
      import { Controller, MemoryTagStore } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)};
      const inner = new MemoryTagStore();
      const store = { tag: inner.tag.bind(inner), untag: inner.untag.bind(inner), getTags: inner.getTags.bind(inner), claim: async () => { throw new Error('down'); } };
      process.on('warning', () => {});
      const xc = new Controller({ tagStore: store }).createExchange({ timeout: 1 });
      xc.registerRequest({ correlationId: 'x' }).response.catch(() => {});
      console.log(JSON.stringify((await xc.wait()).undecided));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const killer = setTimeout(() => child.kill(), 10_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(killer);
    expect({ code, undecided: out.trim() }).toEqual({ code: 0, undecided: '["x"]' });
  });

  it('is decided by the late reply itself when the store is back before the retry', async () => {
    const store = new FlakyStore();
    const controller = make({ tagStore: store });
    const xc = controller.createExchange({ timeout: 10 });
    void xc.registerRequest({ correlationId: 'v' }).response.catch(() => {});
    const ignore = (): void => {};
    subscribe(CHANNELS.tagStoreError, ignore);
    clock.advance(10);
    await xc.wait();
    unsubscribe(CHANNELS.tagStoreError, ignore);
    store.down = false;
    expect(await claimCommitted(store, 'v')).toBe('won');
    expect(await controller.registerResponse({ correlationId: 'v', message: 'late' })).toBe('committed');
  });
});
