import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { getEventListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CapacityError,
  CHANNELS,
  Controller,
  ControllerClosedError,
  CorrelationIdConflictError,
  InvalidArgumentError,
  MemoryTagStore,
  TagStoreError,
  type Backplane,
  type BackplaneRouter,
  type ControllerOptions,
  type Exchange,
  type ResponseOutcome,
  type TagStore,
} from '../src/index.js';
import { flush, GatedTagStore } from './helpers/gated-tag-store.js';
import { ManualClock } from './helpers/manual-clock.js';

/** The contract's defaults (API.md), written out rather than read from the source. */
const THREE_HOURS = 3 * 60 * 60 * 1_000;
const ONE_MINUTE = 60_000;

const controllers: Controller<any, any>[] = [];
let clock = new ManualClock();

function make<Req = string, Res = string>(options: ControllerOptions<Req, Res> = {}): Controller<Req, Res> {
  clock = new ManualClock();
  const controller = new Controller<Req, Res>({ clock, ...options });
  controllers.push(controller);
  return controller;
}

afterEach(async () => {
  await Promise.all(controllers.splice(0).map((c) => c.close()));
  expect(clock.pending).toBe(0);
});

describe('options', () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['an unknown option', { timout: 100 }, /unknown option `timout`/],
    ['a negative timeout', { timeout: -1 }, /timeout must be a number of milliseconds from 0 to 2147483647.*`-1`/],
    ['a NaN timeout', { timeout: Number.NaN }, /timeout .*`NaN`/],
    ['a timeout past what timers hold', { timeout: 2 ** 31 }, /timeout/],
    ['a string timeout', { timeout: '100' }, /timeout .*"100" \(string of 3\)/],
    ['a negative rollbackTtl', { rollbackTtl: -5 }, /rollbackTtl must be a finite number of milliseconds ≥ 0/],
    ['an infinite rollbackTtl', { rollbackTtl: Infinity }, /rollbackTtl/],
    ['a NaN duplicateWindow', { duplicateWindow: Number.NaN }, /duplicateWindow/],
    ['a fractional maxTags', { maxTags: 1.5 }, /maxTags must be an integer ≥ 1/],
    ['a zero maxPendingRequests', { maxPendingRequests: 0 }, /maxPendingRequests must be an integer ≥ 1/],
    ['an empty rollbackTag', { rollbackTag: '' }, /rollbackTag must be a non-empty string/],
    ['a newId that is not a function', { newId: 'abc' }, /newId must be a function/],
    ['a tagStore without methods', { tagStore: {} }, /tagStore must have the methods tag, untag, getTags; missing: tag, untag, getTags/],
  ])('rejects %s with InvalidArgumentError', (_, options, message) => {
    expect(() => new Controller(options as ControllerOptions)).toThrow(InvalidArgumentError);
    expect(() => new Controller(options as ControllerOptions)).toThrow(message);
  });

  it('rejects null option values rather than taking the defaults', () => {
    for (const key of ['timeout', 'rollbackTtl', 'maxTags', 'maxPendingRequests', 'duplicateWindow', 'rollbackTag']) {
      expect(() => new Controller({ [key]: null } as ControllerOptions)).toThrow(InvalidArgumentError);
    }
  });

  it('rejects options that are not an object with InvalidArgumentError', () => {
    expect(() => new Controller(42 as never)).toThrow(InvalidArgumentError);
    expect(() => new Controller(42 as never)).toThrow(expect.objectContaining({ code: 'ERR_RRXC_INVALID_ARGUMENT' }));
    expect(() => new Controller(42 as never)).toThrow(/Controller options must be an object, got `42` \(number\)/);
  });

  it('rejects bad per-exchange options', () => {
    const controller = make();
    expect(() => controller.createExchange({ timeout: -1 })).toThrow(InvalidArgumentError);
    expect(() => controller.createExchange({ signal: {} as AbortSignal })).toThrow(/signal must be an AbortSignal/);
    expect(() => controller.createExchange({ id: '' })).toThrow(/id must be a non-empty string/);
    expect(() => controller.createExchange({ wait: true } as never)).toThrow(/unknown option `wait`/);
    expect(controller.openExchanges).toBe(0);
  });

  it('treats an Infinity timeout as none', () => {
    const xc = make({ timeout: Infinity }).createExchange();
    expect(xc.deadline).toBeUndefined();
    expect(clock.pending).toBe(0);
  });

  it('uses a custom newId and retries it while it returns pending IDs', () => {
    const ids = ['one', 'one', 'two'];
    const controller = make({ newId: () => ids.shift() ?? 'three' });
    const xc = controller.createExchange({ id: 'x' });
    expect(xc.registerRequest().correlationId).toBe('one');
    expect(xc.registerRequest().correlationId).toBe('two');
  });

  it('hands out a different ID on each controller.newCorrelationId() call', () => {
    const controller = make();
    const ids = Array.from({ length: 100 }, () => controller.newCorrelationId());
    expect(new Set(ids).size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^[\w-]{21}$/);
  });

  it('retries a custom newId in controller.newCorrelationId() while it returns a pending ID', () => {
    const ids = ['taken', 'taken', 'fresh'];
    const controller = make({ newId: () => ids.shift() ?? 'spare' });
    controller.createExchange().registerRequest({ correlationId: 'taken' });
    expect(controller.newCorrelationId()).toBe('fresh');
    expect(ids).toEqual([]);
  });

  it('gives up with CorrelationIdConflictError on a newId that only returns pending IDs', () => {
    const controller = make({ newId: () => 'constant' });
    const xc = controller.createExchange({ id: 'x' });
    xc.registerRequest();
    expect(() => xc.registerRequest()).toThrow(CorrelationIdConflictError);
  });

  it('rejects an invalid ID returned by newId', () => {
    const controller = make({ newId: () => 7 as unknown as string });
    const xc = controller.createExchange();
    expect(() => xc.registerRequest()).toThrow(/the ID returned by newId\(\) must be a non-empty string/);
    expect(controller.pendingRequests).toBe(0);
  });

  it('generates exchange IDs unique within and across controllers, and keeps given ones', () => {
    const a = make();
    const b = make();
    const ids = [a, b].flatMap((c) => Array.from({ length: 1_000 }, () => c.createExchange().id));
    expect(new Set(ids).size).toBe(2_000);
    expect(a.createExchange({ id: 'order-42' }).id).toBe('order-42');
  });

  it('accepts longer IDs with maxIdLength', async () => {
    const controller = make({ maxIdLength: 1_000 });
    const id = 'x'.repeat(1_000);
    controller.createExchange().registerRequest({ correlationId: id });
    expect(await controller.registerResponse({ correlationId: id, message: 'ok' })).toBe('delivered');
  });
});

describe('registerResponse()', () => {
  it('delivers a reply to the exchange that registered its ID', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const handle = xc.registerRequest();
    expect(await controller.registerResponse({ correlationId: handle.correlationId, message: 'hi' })).toBe('delivered');
    await expect(handle.response).resolves.toBe('hi');
    expect(xc.getResponse(handle.correlationId)).toBe('hi');
  });

  it('reports a second reply to an open exchange as duplicate and keeps the first', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'first' });
    expect(await controller.registerResponse({ correlationId, message: 'second' })).toBe('duplicate');
    expect(xc.getResponse(correlationId)).toBe('first');
  });

  it('rejects a non-boolean overwrite instead of treating it as false', async () => {
    const controller = make();
    await expect(controller.registerResponse({ correlationId: 'x', message: 'y', overwrite: 'yes' as never })).rejects.toThrow(
      /overwrite must be a boolean/,
    );
  });

  it('replaces the reply with overwrite: true and reports overwritten', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'first' });
    expect(await controller.registerResponse({ correlationId, message: 'second', overwrite: true })).toBe('overwritten');
    expect(xc.getResponse(correlationId)).toBe('second');
  });

  it('reports a reply to an answered ID of an ended exchange as duplicate within duplicateWindow, then unmatched', async () => {
    const controller = make({ duplicateWindow: 1_000 });
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'once' });
    await xc.wait();
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('duplicate');
    expect(await controller.registerResponse({ correlationId, message: 'again', overwrite: true })).toBe('duplicate');
    clock.advance(1_001);
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('unmatched');
  });

  it('keeps answered IDs for 60 s by default: duplicate at 60 000 ms, unmatched after', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'once' });
    await xc.wait();
    clock.advance(ONE_MINUTE);
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('duplicate');
    clock.advance(1);
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('unmatched');
  });

  it('keeps rollback tags for 3 h by default: rolled-back at 3 h - 1 ms, unmatched at 3 h', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    xc.close();
    clock.advance(THREE_HOURS - 1);
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
    clock.advance(1);
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('unmatched');
  });

  it('forgets answered IDs at once with duplicateWindow 0', async () => {
    const controller = make({ duplicateWindow: 0 });
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'once' });
    await xc.wait();
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('unmatched');
  });

  it('reports a late reply as rolled-back until the rollback tag expires, then unmatched', async () => {
    const controller = make({ rollbackTtl: 5_000 });
    const xc = controller.createExchange({ timeout: 100 });
    const { correlationId } = xc.registerRequest();
    clock.advance(100); // the tag is written now, when the timeout fires
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
    clock.advance(4_999);
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
    clock.advance(1);
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('unmatched');
  });

  it('keeps rollback tags forever with rollbackTtl 0', async () => {
    const controller = make({ rollbackTtl: 0 });
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    xc.close();
    clock.advance(365 * 24 * 3_600_000);
    expect(await controller.registerResponse({ correlationId, message: 'very late' })).toBe('rolled-back');
  });

  it('reports a reply nobody asked for as unmatched', async () => {
    expect(await make().registerResponse({ correlationId: 'stranger', message: 'x' })).toBe('unmatched');
  });

  it.each([
    ['no options', undefined],
    ['a numeric ID', { correlationId: 1, message: 'x' }],
    ['an empty ID', { correlationId: '', message: 'x' }],
    ['an over-long ID', { correlationId: 'y'.repeat(257), message: 'x' }],
  ])('rejects %s with InvalidArgumentError, never throwing synchronously', async (_, options) => {
    const controller = make();
    let promise: Promise<ResponseOutcome> | undefined;
    expect(() => (promise = controller.registerResponse(options as never))).not.toThrow();
    await expect(promise).rejects.toMatchObject({ name: 'InvalidArgumentError', code: 'ERR_RRXC_INVALID_ARGUMENT' });
  });

  it('does not let a flood of answered IDs evict a rollback tag', async () => {
    const controller = make({ maxTags: 10, maxDuplicates: 10 });
    const late = controller.createExchange();
    const { correlationId } = late.registerRequest();
    late.close();
    for (let i = 0; i < 100; i++) {
      const xc = controller.createExchange();
      const handle = xc.registerRequest();
      await controller.registerResponse({ correlationId: handle.correlationId, message: 'ok' });
      await xc.wait();
    }
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
  });

  it('reports rolled-back, not duplicate, for an ID answered once and then reused and left unanswered', async () => {
    const controller = make();
    const first = controller.createExchange();
    first.registerRequest({ correlationId: 'reused' });
    await controller.registerResponse({ correlationId: 'reused', message: 'ok' });
    await first.wait();
    const second = controller.createExchange();
    second.registerRequest({ correlationId: 'reused' });
    second.close();
    expect(await controller.registerResponse({ correlationId: 'reused', message: 'late' })).toBe('rolled-back');
  });

  it('reports rolled-back, not duplicate, for a generated ID answered once and then given again and left unanswered', async () => {
    const controller = make();
    const first = controller.createExchange();
    const { correlationId } = first.registerRequest();
    await controller.registerResponse({ correlationId, message: 'ok' });
    await first.wait();
    const second = controller.createExchange();
    second.registerRequest({ correlationId });
    second.close();
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
  });
});

describe('capacity', () => {
  it('accepts 1 000 000 pending requests by default and throws CapacityError on one more', () => {
    // About 2 s and 300 MB; a no-op tag store keeps close() from tagging a million IDs.
    const controller = make({ tagStore: { tag: () => undefined, untag: () => false, getTags: () => [] } });
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

describe('onRollback', () => {
  it('is called once per ended exchange with unanswered IDs, after they were tagged', async () => {
    const calls: [readonly string[], string, boolean][] = [];
    let controller!: Controller<string, string>;
    controller = make({
      onRollback: async (ids, result) => {
        calls.push([ids, result.status, await controller.isRolledBack(ids[0]!)]);
      },
    });
    const xc = controller.createExchange();
    xc.registerRequest({ correlationId: 'lost' });
    const answered = controller.createExchange();
    const { correlationId } = answered.registerRequest();
    await controller.registerResponse({ correlationId, message: 'ok' });
    await answered.wait();
    xc.close();
    xc.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([[['lost'], 'closed', true]]);
  });

  it('reports a hook that throws on rrxc:hook:error and keeps routing', async () => {
    const failures: unknown[] = [];
    const listener = (message: unknown): void => void failures.push((message as { error: unknown }).error);
    subscribe(CHANNELS.hookError, listener);
    try {
      const boom = new Error('boom');
      const controller = make({
        onRollback: () => {
          throw boom;
        },
      });
      const xc = controller.createExchange();
      xc.registerRequest({ correlationId: 'a' });
      xc.close();
      await new Promise((resolve) => setImmediate(resolve));
      expect(failures).toEqual([boom]);
      expect(await controller.registerResponse({ correlationId: 'a', message: 'late' })).toBe('rolled-back');
    } finally {
      unsubscribe(CHANNELS.hookError, listener);
    }
  });

  it('reports a hook that rejects on rrxc:hook:error', async () => {
    const failures: unknown[] = [];
    const listener = (message: unknown): void => void failures.push((message as { error: unknown }).error);
    subscribe(CHANNELS.hookError, listener);
    try {
      const controller = make({ onRollback: () => Promise.reject(new Error('async boom')) });
      const xc = controller.createExchange();
      xc.registerRequest();
      xc.close();
      await new Promise((resolve) => setImmediate(resolve));
      expect(failures).toEqual([expect.objectContaining({ message: 'async boom' })]);
    } finally {
      unsubscribe(CHANNELS.hookError, listener);
    }
  });

  it('survives a hook that re-enters: registerResponse and close() from onRollback', async () => {
    const outcomes: ResponseOutcome[] = [];
    let controller!: Controller<string, string>;
    controller = make({
      onRollback: async (ids) => {
        if (ids[0] !== 'a') return; // the exchanges close() ends call it too
        outcomes.push(await controller.registerResponse({ correlationId: ids[0]!, message: 'from hook' }));
        await controller.close();
      },
    });
    const a = controller.createExchange();
    a.registerRequest({ correlationId: 'a' });
    const b = controller.createExchange();
    b.registerRequest({ correlationId: 'b' });
    a.close();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(outcomes[0]).toBe('rolled-back');
    expect(b.status).toBe('closed');
    expect(controller.openExchanges).toBe(0);
  });
});

describe('diagnostics channels', () => {
  it('publishes the life of an exchange on the rrxc:* channels, with what each message carries', async () => {
    const seen: [string, Record<string, unknown>][] = [];
    const listeners = Object.values(CHANNELS).map((name) => {
      const listener = (message: unknown): void => void seen.push([name, message as Record<string, unknown>]);
      subscribe(name, listener);
      return [name, listener] as const;
    });
    try {
      const controller = make();
      clock.advance(5); // the exchange starts after the controller: its duration is not the controller's age
      const xc = controller.createExchange();
      const { correlationId } = xc.registerRequest();
      xc.registerRequest({ correlationId: 'never' });
      clock.advance(30);
      await controller.registerResponse({ correlationId, message: 'ok' });
      await controller.registerResponse({ correlationId, message: 'ok' });
      await controller.registerResponse({ correlationId, message: 'better', overwrite: true });
      clock.advance(12);
      xc.close();
      await controller.registerResponse({ correlationId: 'never', message: 'late' });
      await controller.registerResponse({ correlationId: 'nobody', message: '?' });
      const response = (id: string, outcome: ResponseOutcome): Record<string, unknown> => ({ controller, correlationId: id, outcome });
      expect(seen).toEqual([
        ['rrxc:exchange:created', { controller, exchange: xc }],
        ['rrxc:request:registered', { controller, exchange: xc, correlationId }],
        ['rrxc:request:registered', { controller, exchange: xc, correlationId: 'never' }],
        ['rrxc:response:delivered', response(correlationId, 'delivered')],
        ['rrxc:response:duplicate', response(correlationId, 'duplicate')],
        ['rrxc:response:overwritten', response(correlationId, 'overwritten')],
        ['rrxc:rollback:tagged', { controller, exchange: xc, correlationIds: ['never'], tag: 'rollback', ttl: THREE_HOURS }],
        [
          'rrxc:exchange:ended',
          {
            controller,
            exchange: xc,
            result: expect.objectContaining({ exchangeId: xc.id, status: 'closed', durationMs: 42, unanswered: ['never'] }),
          },
        ],
        ['rrxc:response:rolled-back', response('never', 'rolled-back')],
        ['rrxc:response:unmatched', response('nobody', 'unmatched')],
      ]);
    } finally {
      for (const [name, listener] of listeners) unsubscribe(name, listener);
    }
  });

  it('publishes an overwrite on rrxc:response:overwritten', async () => {
    const seen: unknown[] = [];
    const listener = (message: unknown): void => void seen.push(message);
    subscribe(CHANNELS.responseOverwritten, listener);
    try {
      const controller = make();
      const { correlationId } = controller.createExchange().registerRequest();
      await controller.registerResponse({ correlationId, message: 'first' });
      expect(seen).toEqual([]);
      expect(await controller.registerResponse({ correlationId, message: 'second', overwrite: true })).toBe('overwritten');
      expect(seen).toEqual([{ controller, correlationId, outcome: 'overwritten' }]);
    } finally {
      unsubscribe(CHANNELS.responseOverwritten, listener);
    }
  });

  it('documents every channel in docs/guide.md', () => {
    const guide = readFileSync(new URL('../docs/guide.md', import.meta.url), 'utf8');
    for (const [key, name] of Object.entries(CHANNELS)) expect(guide, key).toContain(`| \`${name}\` (\`${key}\`) |`);
  });
});

describe('re-entrant user code during an exchange end', () => {
  it('finds the unanswered ID rolled back and the answered one duplicate, from an abort listener on exchange.signal', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const answered = xc.registerRequest();
    const lost = xc.registerRequest();
    await controller.registerResponse({ correlationId: answered.correlationId, message: 'ok' });
    const seen: Promise<ResponseOutcome>[] = [];
    xc.signal.addEventListener('abort', () => {
      seen.push(controller.registerResponse({ correlationId: lost.correlationId, message: 'late' }));
      seen.push(controller.registerResponse({ correlationId: answered.correlationId, message: 'again' }));
    });
    xc.close();
    expect(await Promise.all(seen)).toEqual(['rolled-back', 'duplicate']);
  });

  it('finds the unanswered ID rolled back from an rrxc:exchange:ended subscriber', async () => {
    const controller = make();
    const seen: Promise<ResponseOutcome>[] = [];
    const listener = (message: unknown): void => {
      const { result } = message as { result: { unanswered: readonly string[] } };
      for (const id of result.unanswered) seen.push(controller.registerResponse({ correlationId: id, message: 'late' }));
    };
    subscribe(CHANNELS.exchangeEnded, listener);
    try {
      const xc = controller.createExchange();
      xc.registerRequest();
      xc.close();
      expect(await Promise.all(seen)).toEqual(['rolled-back']);
    } finally {
      unsubscribe(CHANNELS.exchangeEnded, listener);
    }
  });

  it('leaves no listener or timer when an rrxc:exchange:created subscriber ends the exchange at once', async () => {
    const controller = make();
    const listener = (message: unknown): void => (message as { exchange: { close(): void } }).exchange.close();
    subscribe(CHANNELS.exchangeCreated, listener);
    try {
      const ac = new AbortController();
      const xc = controller.createExchange({ signal: ac.signal, timeout: 60_000 });
      expect(xc.state).toBe('ended');
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      expect(clock.pending).toBe(0);
    } finally {
      unsubscribe(CHANNELS.exchangeCreated, listener);
    }
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
    clock = new ManualClock();
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
    clock = new ManualClock();
    const xc = controller.createExchange();
    xc.registerRequest({ correlationId: 'in-flight' });
    xc.close();
    expect(await controller.registerResponse({ correlationId: 'in-flight', message: 'late' })).toBe('rolled-back');
    await xc.wait();
    expect(await controller.isRolledBack('in-flight')).toBe(true);
  });

  it('resolves wait() only once the tags are written', async () => {
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
    try {
      await flush();
      expect(xc.status).toBe('closed');
      expect(store.pendingWrites).toBe(1);
      expect(settled).toBe(false);
      // Meanwhile a late reply is already rolled back.
      expect(await controller.registerResponse({ correlationId: 'w', message: 'late' })).toBe('rolled-back');
    } finally {
      store.release();
    }
    expect((await waiting).unanswered).toEqual(['w']);
    expect(store.inner.getTags('w')).toEqual(['rollback']);
  });

  it('rejects with TagStoreError when the store fails a look-up', async () => {
    const store = new SlowStore();
    store.fail = true;
    const controller = new Controller<string, string>({ tagStore: store });
    controllers.push(controller);
    clock = new ManualClock();
    const error = await controller.registerResponse({ correlationId: 'x', message: 'y' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TagStoreError);
    expect(error).toMatchObject({ code: 'ERR_RRXC_TAG_STORE', operation: 'getTags', cause: expect.objectContaining({ message: 'store down' }) });
  });

  it('times its calls with an injected clock written as a class', async () => {
    const store = new SlowStore();
    store.delay = 1_000_000;
    clock = new ManualClock();
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
    clock = new ManualClock();
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
    clock = new ManualClock();
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
      clock = new ManualClock();
      const xc = controller.createExchange();
      xc.registerRequest({ correlationId: 'lost-tag' });
      xc.close();
      expect((await xc.wait()).status).toBe('closed');
      expect(failures).toEqual([expect.objectContaining({ correlationIds: ['lost-tag'], error: expect.any(TagStoreError) })]);
    } finally {
      unsubscribe(CHANNELS.tagStoreError, listener);
    }
  });

  it('waits for rollback writes in close()', async () => {
    const store = new SlowStore();
    store.writeDelay = 30;
    const controller = new Controller<string, string>({ tagStore: store });
    clock = new ManualClock();
    controller.createExchange().registerRequest({ correlationId: 'c' });
    await controller.close();
    expect(await store.getTags('c')).toEqual(['rollback']);
  });
});

describe('with a backplane', () => {
  /** Two controllers in one process, joined the way a network backplane joins instances. */
  class InProcessBackplane implements Backplane {
    router: BackplaneRouter | undefined;
    peers: InProcessBackplane[] = [];
    registered: string[] = [];
    ended: [readonly string[], readonly string[]][] = [];
    closed = false;
    start(router: BackplaneRouter): void {
      this.router = router;
    }
    async forward(correlationId: string, message: unknown, overwrite: boolean): Promise<ResponseOutcome> {
      for (const peer of this.peers) {
        const outcome = await peer.router!.route(correlationId, message, overwrite);
        if (outcome !== 'unmatched') return outcome;
      }
      return 'unmatched';
    }
    close(): void {
      this.closed = true;
    }
    requestRegistered(correlationId: string): void {
      this.registered.push(correlationId);
    }
    requestsEnded(answered: readonly string[], unanswered: readonly string[]): void {
      this.ended.push([answered, unanswered]);
    }
  }

  function pair(): [Controller<string, string>, Controller<string, string>, InProcessBackplane, InProcessBackplane] {
    const planeA = new InProcessBackplane();
    const planeB = new InProcessBackplane();
    planeA.peers = [planeB];
    planeB.peers = [planeA];
    clock = new ManualClock();
    const a = new Controller<string, string>({ backplane: planeA, clock });
    const b = new Controller<string, string>({ backplane: planeB, clock });
    controllers.push(a, b);
    return [a, b, planeA, planeB];
  }

  it("delivers a reply registered on B to A's exchange, and B gets A's outcome", async () => {
    const [a, b] = pair();
    const xc = a.createExchange();
    const handle = xc.registerRequest();
    expect(await b.registerResponse({ correlationId: handle.correlationId, message: 'via B' })).toBe('delivered');
    await expect(handle.response).resolves.toBe('via B');
    expect(await b.registerResponse({ correlationId: handle.correlationId, message: 'again' })).toBe('duplicate');
  });

  it("answers a late reply on B with A's rolled-back, B never consulting its own tag store", async () => {
    const planeA = new InProcessBackplane();
    const planeB = new InProcessBackplane();
    planeA.peers = [planeB];
    planeB.peers = [planeA];
    let lookups = 0;
    const storeB = new MemoryTagStore();
    const countingStore: TagStore = {
      tag: (id, tag, ttl) => storeB.tag(id, tag, ttl),
      untag: (id, tag) => storeB.untag(id, tag),
      getTags: (id) => {
        lookups++;
        return storeB.getTags(id);
      },
    };
    const a = make({ backplane: planeA });
    const b = new Controller<string, string>({ backplane: planeB, tagStore: countingStore, clock });
    controllers.push(b);
    const xc = a.createExchange();
    const { correlationId } = xc.registerRequest();
    xc.close();
    expect(await b.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
    expect(lookups).toBe(0);
  });

  it("shows the backplane the controller's rollback settings", () => {
    const plane = new InProcessBackplane();
    make({ backplane: plane, rollbackTag: 'undo', rollbackTtl: 1_234, duplicateWindow: 99 });
    expect(plane.router).toMatchObject({ rollbackTag: 'undo', rollbackTtl: 1_234, duplicateWindow: 99 });
  });

  it('lets the backplane abandon every open exchange: aborted, tagged, the controller still open', async () => {
    const plane = new InProcessBackplane();
    const controller = make({ backplane: plane });
    const exchanges = [controller.createExchange(), controller.createExchange()];
    const ids = exchanges.map((xc) => xc.registerRequest().correlationId);
    const reason = new Error('lease lost');
    plane.router!.abandon(reason);
    for (const xc of exchanges) expect(await xc.wait()).toMatchObject({ status: 'aborted', reason });
    for (const id of ids) expect(await controller.isRolledBack(id)).toBe(true);
    expect(() => controller.createExchange()).not.toThrow();
  });

  it('abandons exchanges that a listener opens while the others are being abandoned, too', async () => {
    const plane = new InProcessBackplane();
    const controller = make({ backplane: plane });
    const first = controller.createExchange();
    first.registerRequest();
    let opened: Exchange<string, string> | undefined;
    const listener = (): void => {
      // Opened while abandon() is still ending the others: the next pass ends it.
      opened ??= controller.createExchange();
    };
    subscribe(CHANNELS.exchangeEnded, listener);
    try {
      plane.router!.abandon(new Error('lease lost'));
    } finally {
      unsubscribe(CHANNELS.exchangeEnded, listener);
    }
    expect([first.state, opened?.state, controller.openExchanges]).toEqual(['ended', 'ended', 0]);
  });

  it('routes a reply as late, not delivered, when the backplane says this instance is fenced', async () => {
    const plane = new InProcessBackplane();
    let fenced = false;
    Object.assign(plane, {
      checkLease(): boolean {
        if (fenced) plane.router!.abandon(new Error('lease lost'));
        return !fenced;
      },
    });
    const controller = make({ backplane: plane });
    const xc = controller.createExchange();
    const handle = xc.registerRequest();
    fenced = true;
    expect(await controller.registerResponse({ correlationId: handle.correlationId, message: 'too late' })).toBe('rolled-back');
    expect(await xc.wait()).toMatchObject({ status: 'aborted', unanswered: [handle.correlationId] });
  });

  it('answers unmatched when no instance owns the ID', async () => {
    const [, b] = pair();
    expect(await b.registerResponse({ correlationId: 'nobody', message: 'x' })).toBe('unmatched');
  });

  it('tells the backplane about registered and ended requests, and closes it', async () => {
    const [a, , planeA] = pair();
    const xc = a.createExchange();
    xc.registerRequest({ correlationId: 'r1' });
    xc.registerRequest({ correlationId: 'r2' });
    await a.registerResponse({ correlationId: 'r1', message: 'ok' });
    xc.close();
    expect(planeA.registered).toEqual(['r1', 'r2']);
    expect(planeA.ended).toEqual([[['r1'], ['r2']]]);
    await a.close();
    expect(planeA.closed).toBe(true);
  });
});
