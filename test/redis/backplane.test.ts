import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Controller, type ResponseOutcome } from '../../src/index.js';
import { BackplaneError, REDIS_CHANNELS, RedisBackplane, RedisTagStore } from '../../src/redis/index.js';
import { parseBatch, type Frame } from '../../src/redis/_wire.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { answeredRecords, keysUnder } from '../helpers/redis-keys.js';
import { freePort, useRedis, type TestRedis } from '../helpers/redis-server.js';
import { Cluster, sleep } from '../helpers/redis-instances.js';

let server: TestRedis;
let cluster: Cluster;

beforeAll(async () => {
  server = await useRedis();
});
afterAll(async () => {
  await server.stop();
});
beforeEach((context) => {
  cluster = new Cluster(server.url, context.task.name.replace(/\W+/g, '-').slice(0, 40));
});
afterEach(async () => {
  await cluster.cleanup();
});

describe('RedisBackplane with two instances', () => {
  it('delivers at the owner a reply that reached the other instance, and answers the owner outcome', async () => {
    const a = await cluster.add();
    const b = await cluster.add();
    const xc = a.controller.createExchange({ timeout: 5_000 });
    const { correlationId, response } = xc.registerRequest({ message: 'question' });

    expect(correlationId.startsWith(`${a.backplane.instanceId}~`)).toBe(true);
    expect(await b.controller.registerResponse({ correlationId, message: { answer: 42 } })).toBe('delivered');
    expect(await response).toEqual({ answer: 42 });
    expect((await xc.wait()).status).toBe('completed');
  });

  it('reports a second copy reaching the other instance as duplicate, delivering only the first', async () => {
    const a = await cluster.add();
    const b = await cluster.add();
    const xc = a.controller.createExchange({ timeout: 5_000 });
    const { correlationId } = xc.registerRequest();
    xc.registerRequest();

    expect(await b.controller.registerResponse({ correlationId, message: 1 })).toBe('delivered');
    expect(await b.controller.registerResponse({ correlationId, message: 2 })).toBe('duplicate');
    expect(xc.getResponse(correlationId)).toBe(1);
    expect(await b.controller.registerResponse({ correlationId, message: 3, overwrite: true })).toBe('overwritten');
    expect(xc.getResponse(correlationId)).toBe(3);
  });

  it('finds the owner of a correlation ID the application chose through its ownership record', async () => {
    const a = await cluster.add();
    const b = await cluster.add();
    const xc = a.controller.createExchange({ timeout: 5_000 });
    const { response } = xc.registerRequest({ correlationId: 'order-17' });
    await sleep(20); // the record is written asynchronously (pipelined)

    expect(await b.controller.registerResponse({ correlationId: 'order-17', message: 'paid' })).toBe('delivered');
    expect(await response).toBe('paid');
  });

  it('answers unmatched at once for an ID no instance owns', async () => {
    await cluster.add();
    const b = await cluster.add();
    const started = Date.now();
    expect(await b.controller.registerResponse({ correlationId: 'nobody-owns-this', message: 1 })).toBe('unmatched');
    expect(await b.controller.registerResponse({ correlationId: 'ghost0000000~abc', message: 1 })).toBe('unmatched');
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('reports duplicate for a late copy of an answered ID after its exchange ended', async () => {
    const a = await cluster.add();
    const b = await cluster.add();
    const result = await a.controller.synchronize({ timeout: 5_000 }, async (xc) => {
      const { correlationId } = xc.registerRequest({ correlationId: 'answered-1' });
      await sleep(20);
      await b.controller.registerResponse({ correlationId, message: 'first' });
    });
    expect(result.status).toBe('completed');
    await sleep(20);
    expect(await b.controller.registerResponse({ correlationId: 'answered-1', message: 'again' })).toBe('duplicate');
  });

  it('shows a rollback tag set by one instance on the other, until its TTL expires', async () => {
    const a = await cluster.add({}, { rollbackTtl: 300 });
    const b = await cluster.add({}, { rollbackTtl: 300 });
    const xc = a.controller.createExchange({ timeout: 30 });
    const { correlationId } = xc.registerRequest();
    expect((await xc.wait()).unanswered).toEqual([correlationId]);

    expect(await b.controller.isRolledBack(correlationId)).toBe(true);
    expect(await b.controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
    await sleep(400);
    expect(await b.controller.isRolledBack(correlationId)).toBe(false);
    expect(await b.controller.registerResponse({ correlationId, message: 'later' })).toBe('unmatched');
  });

  it('leaves every key it writes with a TTL', async () => {
    const a = await cluster.add({}, { rollbackTtl: 0 });
    const b = await cluster.add();
    const xc = a.controller.createExchange();
    const answered = xc.registerRequest({ correlationId: 'k-answered' });
    xc.registerRequest({ correlationId: 'k-unanswered' });
    xc.registerRequest(); // no timeout: a record without a deadline
    await sleep(20);
    await b.controller.registerResponse({ correlationId: answered.correlationId, message: 1 });
    await a.controller.tag('k-tagged', 'audit', { ttl: 0 });

    const live = await keysUnder(cluster.admin, cluster.prefix);
    expect(live.length).toBeGreaterThanOrEqual(4);
    for (const key of live) expect(await cluster.admin.pttl(key), key).toBeGreaterThan(0);
    xc.close();
    await xc.wait();
    for (const key of await keysUnder(cluster.admin, cluster.prefix)) expect(await cluster.admin.pttl(key), key).toBeGreaterThan(0);
  });
});

describe('RedisBackplane with three instances', () => {
  it('routes replies for each owner from either of the two others', async () => {
    const instances = [await cluster.add(), await cluster.add(), await cluster.add()];
    const exchanges = instances.map((i) => i.controller.createExchange({ timeout: 5_000 }));
    const ids = exchanges.map((xc, owner) => [xc.registerRequest().correlationId, xc.registerRequest({ correlationId: `user-${owner}` }).correlationId]);
    await sleep(20);

    const outcomes: ResponseOutcome[] = [];
    for (const [owner, [generated, chosen]] of ids.entries()) {
      const others = instances.filter((_, i) => i !== owner);
      outcomes.push(await others[0]!.controller.registerResponse({ correlationId: generated!, message: `${owner}-g` }));
      outcomes.push(await others[1]!.controller.registerResponse({ correlationId: chosen!, message: `${owner}-u` }));
    }
    expect(outcomes).toEqual(Array(6).fill('delivered'));
    const results = await Promise.all(exchanges.map((xc) => xc.wait()));
    expect(results.map((r) => r.entries.map((e) => e.response))).toEqual([
      ['0-g', '0-u'],
      ['1-g', '1-u'],
      ['2-g', '2-u'],
    ]);
  });

  it('accounts for every reply exactly once among many concurrent exchanges and duplicate copies', async () => {
    const instances = [await cluster.add(), await cluster.add(), await cluster.add()];
    const perInstance = 100;
    const exchanges = instances.flatMap((instance, owner) =>
      Array.from({ length: perInstance }, (_, n) => {
        const xc = instance.controller.createExchange({ timeout: 20_000 });
        const ids = [xc.registerRequest().correlationId, xc.registerRequest({ correlationId: `c-${owner}-${n}` }).correlationId];
        return { xc, ids };
      }),
    );
    await sleep(50);

    // Every reply is sent twice, to two different instances, all at once.
    const sends = exchanges.flatMap(({ ids }, n) =>
      ids.flatMap((correlationId, k) => [0, 1].map((copy) => ({ correlationId, via: instances[(n + k + copy) % 3]!, message: `${correlationId}#${copy}` }))),
    );
    const outcomes = await Promise.all(sends.map((s) => s.via.controller.registerResponse({ correlationId: s.correlationId, message: s.message })));

    const byId = new Map<string, ResponseOutcome[]>();
    for (const [i, s] of sends.entries()) byId.set(s.correlationId, [...(byId.get(s.correlationId) ?? []), outcomes[i]!]);
    expect(byId.size).toBe(3 * perInstance * 2);
    for (const [id, got] of byId) expect([...got].sort(), id).toEqual(['delivered', 'duplicate']);

    const results = await Promise.all(exchanges.map(({ xc }) => xc.wait()));
    expect(results.every((r) => r.status === 'completed')).toBe(true);
    const responses = results.flatMap((r) => r.entries.map((e) => e.response as string));
    expect(new Set(responses.map((r) => r.split('#')[0])).size).toBe(3 * perInstance * 2);
  });
});

describe('RedisBackplane when the owner is gone', () => {
  it('answers rolled-back for the IDs of an owner that closed, at once', async () => {
    const a = await cluster.add();
    const b = await cluster.add();
    const xc = a.controller.createExchange();
    const generated = xc.registerRequest().correlationId;
    xc.registerRequest({ correlationId: 'closed-owner-1' });
    await a.controller.close();

    const started = Date.now();
    expect(await b.controller.registerResponse({ correlationId: generated, message: 1 })).toBe('rolled-back');
    expect(await b.controller.registerResponse({ correlationId: 'closed-owner-1', message: 1 })).toBe('rolled-back');
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('rejects with owner-unreachable while a silent owner is alive and its deadline is ahead, then rolls back once its lease lapses', async () => {
    const b = await cluster.add({ forwardTimeout: 300, retryInterval: 50 });
    // An owner that holds a lease and a pending record but no longer hears its channel: a partition.
    const ghost = new RedisBackplane({ url: cluster.url, prefix: cluster.prefix, instanceId: 'ghost', leaseTtl: 800 });
    await ghost.ready();
    ghost.requestRegistered('partitioned-1', Date.now() + 60_000);
    await ghost.close(); // unsubscribes and deletes its lease…
    await cluster.admin.set(`${cluster.prefix}live:{ghost}`, 'x', 'PX', 1_200); // …which we put back, as if it were still alive
    await cluster.admin.set(`${cluster.prefix}o:{partitioned-1}`, `p|ghost|${Date.now() + 60_000}`, 'PX', 60_000);

    const started = Date.now();
    const error = await b.controller.registerResponse({ correlationId: 'partitioned-1', message: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackplaneError);
    expect(error).toMatchObject({ code: 'ERR_RRXC_BACKPLANE', failure: 'owner-unreachable' });
    // Two rounds of forwardTimeout (the record may come yet), then "unknown".
    expect(Date.now() - started).toBeLessThan(1_100);

    await sleep(1_250 - (Date.now() - started));
    expect(await b.controller.registerResponse({ correlationId: 'partitioned-1', message: 1 })).toBe('rolled-back');
    expect(await b.controller.isRolledBack('partitioned-1')).toBe(true);
  });

  it('rejects a forward still waiting for a silent owner with closed when its own backplane closes', async () => {
    const b = await cluster.add({ forwardTimeout: 30_000, retryInterval: 200 });
    await cluster.admin.set(`${cluster.prefix}live:{mute}`, 'x', 'PX', 60_000);
    const pending = b.controller.registerResponse({ correlationId: 'mute~1', message: 1 }).catch((e: unknown) => e);
    await sleep(50);
    const started = Date.now();
    await b.controller.close();
    expect(await pending).toMatchObject({ code: 'ERR_RRXC_BACKPLANE', failure: 'closed' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('never rolls back for a live owner, though the deadline and the grace passed (it may have delivered): unknown until its lease lapses', async () => {
    const b = await cluster.add({ forwardTimeout: 200, retryInterval: 50, deadlineGrace: 100 });
    await cluster.admin.set(`${cluster.prefix}live:{stuck}`, 'x', 'PX', 1_500);
    await cluster.admin.set(`${cluster.prefix}o:{stuck-1}`, `p|stuck|${(await serverTime(cluster)) + 100}`, 'PX', 60_000);
    await cluster.admin.zadd(`${cluster.prefix}p:{stuck}`, (await serverTime(cluster)) + 100, 'stuck~1');

    await sleep(250);
    for (const correlationId of ['stuck-1', 'stuck~1']) {
      expect(await b.controller.registerResponse({ correlationId, message: 1 }).catch((e: unknown) => e)).toMatchObject({ code: 'ERR_RRXC_BACKPLANE', failure: 'owner-unreachable' });
      expect(await b.controller.isRolledBack(correlationId)).toBe(false);
    }
    await sleep(1_300); // the lease lapsed
    for (const correlationId of ['stuck-1', 'stuck~1']) expect(await b.controller.registerResponse({ correlationId, message: 1 })).toBe('rolled-back');
  });
});

describe('RedisBackplane fencing and generated IDs', () => {
  it('writes no per-request record for the IDs it generates, only its own pending set', async () => {
    const a = await cluster.add();
    const xc = a.controller.createExchange({ timeout: 5_000 });
    const { correlationId } = xc.registerRequest();
    await sleep(30);
    const keys = await keysUnder(cluster.admin, cluster.prefix);
    expect(keys.some((k) => k.includes(`o:{${correlationId}}`))).toBe(false);
    expect(await cluster.admin.zscore(`${cluster.prefix}p:{${a.backplane.instanceId}}`, correlationId)).not.toBeNull();
    xc.close();
  });

  // The end state only: that the registration was never written (rather than written and removed) shows
  // only in `INFO commandstats` (no ZADD), which the other suites sharing this server would blur.
  it('leaves no pending entry for an ID registered and answered before its registration went out, only its answer', async () => {
    const a = await cluster.add();
    const xc = a.controller.createExchange({ timeout: 5_000 });
    const { correlationId } = xc.registerRequest();
    expect(await a.controller.registerResponse({ correlationId, message: 1 })).toBe('delivered');
    await xc.wait();
    await sleep(30);
    expect(await cluster.admin.exists(`${cluster.prefix}p:{${a.backplane.instanceId}}`)).toBe(0);
    expect((await answeredRecords(cluster.admin, cluster.prefix, a.backplane.instanceId)).get(correlationId)).toMatch(/^\d+$/);
  });

  it('writes the pending set of a turn with thousands of registrations in bounded script calls', async () => {
    const a = await cluster.add();
    const xc = a.controller.createExchange({ timeout: 5_000 });
    const handles = Array.from({ length: 2_500 }, () => xc.registerRequest());
    await sleep(100);
    expect(await cluster.admin.zcard(`${cluster.prefix}p:{${a.backplane.instanceId}}`)).toBe(2_500);
    xc.close();
    await xc.wait();
    await sleep(100);
    // None pending any more: each stays, marked rolled back by its owner (a negative score), for rollbackTtl.
    expect(await cluster.admin.zcount(`${cluster.prefix}p:{${a.backplane.instanceId}}`, 0, '+inf')).toBe(0);
    expect(await cluster.admin.zcount(`${cluster.prefix}p:{${a.backplane.instanceId}}`, '-inf', '(0')).toBe(2_500);
    expect(handles).toHaveLength(2_500);
  });

  it('drops the records of answered IDs once nobody may ask for them any more, with UNLINK before their TTL would (off Redis\' main thread)', async () => {
    // Kept max(duplicateWindow, 2 × (forwardTimeout + retryInterval) + 5 × commandTimeout) = 3 200 ms,
    // in hashes of 200 ms of server time, each living 3 200 + 3 × 200 ms from its first record.
    const bounds = { forwardTimeout: 100, retryInterval: 20, commandTimeout: 100 };
    const a = await cluster.add(bounds, { duplicateWindow: 3_200 });
    const b = await cluster.add(bounds);
    const answer = async (message: number): Promise<string> => {
      const xc = a.controller.createExchange({ timeout: 5_000 });
      const { correlationId } = xc.registerRequest();
      expect(await b.controller.registerResponse({ correlationId, message })).toBe('delivered');
      await xc.wait();
      return correlationId;
    };
    const serverTime = async (): Promise<number> => {
      const [seconds, micros] = await cluster.admin.time();
      return Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000);
    };
    const first = await answer(1);
    expect((await answeredRecords(cluster.admin, cluster.prefix, a.backplane.instanceId)).get(first)).toMatch(new RegExp(`^\\d+ ${b.backplane.instanceId} \\d+$`));
    const [hash] = await keysUnder(cluster.admin, `${cluster.prefix}a:{${a.backplane.instanceId}}:`);
    const start = Number(hash!.slice(hash!.lastIndexOf(':') + 1)) * 200;
    // The hash outlives the span in which a new hash drops it: from keep + two widths after its start to keep + three.
    const expires = (await serverTime()) + (await cluster.admin.pttl(hash!));
    expect(expires).toBeGreaterThanOrEqual(start + 3_800);
    await sleep(start + 3_650 - (await serverTime()));
    await answer(2);
    expect(await cluster.admin.exists(hash!)).toBe(0);
    // Gone before its TTL: the owner's write dropped it.
    expect(await serverTime()).toBeLessThan(expires);
    expect((await answeredRecords(cluster.admin, cluster.prefix, a.backplane.instanceId)).get(first)).toBeUndefined();
  });

  // What Redis holds is enough: with the owner gone, the other instance finds the owner's answer.
  it.each([
    { answered: 'forwarded from the other instance', at: 'b' },
    // Registered and answered within one write: no pending entry, only the answer.
    { answered: 'at its owner, before its registration went out', at: 'a' },
  ] as const)('reports duplicate for a late copy of a generated ID answered $answered, after its owner closed', async ({ at }) => {
    // Other settings than the owner's: b would keep records 30 s in hashes of 1 875 ms, a keeps them 60 s in 3 750 ms.
    const a = await cluster.add();
    const b = await cluster.add({}, { duplicateWindow: 30_000 });
    const xc = a.controller.createExchange({ timeout: 5_000 });
    const { correlationId } = xc.registerRequest();
    expect(await (at === 'a' ? a : b).controller.registerResponse({ correlationId, message: 1 })).toBe('delivered');
    await xc.wait();
    await a.controller.close();
    expect(await b.controller.registerResponse({ correlationId, message: 2 })).toBe('duplicate');
  });

  it('acknowledges a forward on the channel of its forwarder with a frame the forwarder reads, for a generated ID and a chosen one', async () => {
    const a = await cluster.add();
    const b = await cluster.add();
    const listener = new Redis(cluster.url);
    const frames: Frame[] = [];
    listener.on('message', (_channel: string, batch: string) => parseBatch(batch, (frame) => frames.push(frame)));
    await listener.subscribe(`${cluster.prefix}in:${b.backplane.instanceId}`);
    try {
      const xc = a.controller.createExchange({ timeout: 5_000 });
      // A generated ID (the per-turn script) and one the application chose (a script of its own).
      const generated = xc.registerRequest().correlationId;
      const chosen = xc.registerRequest({ correlationId: `${cluster.prefix}chosen` }).correlationId;
      await sleep(30);
      for (const correlationId of [generated, chosen]) expect(await b.controller.registerResponse({ correlationId, message: 1 })).toBe('delivered');
      await sleep(30);
      expect(frames).toEqual([
        { kind: 'ack', seq: expect.any(Number), answer: 'delivered' },
        { kind: 'ack', seq: expect.any(Number), answer: 'delivered' },
      ]);
      expect(frames[0]!.seq).not.toBe(frames[1]!.seq);
    } finally {
      listener.disconnect();
    }
  });

  it('answers unmatched, never rolled-back, for a generated ID of a dead owner that it no longer had pending', async () => {
    const b = await cluster.add({ forwardTimeout: 200, retryInterval: 50 });
    // A dead owner (no lease) whose pending set does not hold the ID: answered long ago, or never registered.
    await cluster.admin.zadd(`${cluster.prefix}p:{gone}`, Date.now() + 60_000, 'gone~other');
    await cluster.admin.pexpire(`${cluster.prefix}p:{gone}`, 60_000);
    expect(await b.controller.registerResponse({ correlationId: 'gone~answered-long-ago', message: 1 })).toBe('unmatched');
    expect(await b.controller.registerResponse({ correlationId: 'gone~other', message: 1 })).toBe('rolled-back');
    expect(await b.controller.isRolledBack('gone~other')).toBe(true);
  });

  it('ends its open exchanges and rolls their IDs back when it finds its lease gone (fencing)', async () => {
    const lost: unknown[] = [];
    const onLost = (message: unknown): void => void lost.push(message);
    subscribe(REDIS_CHANNELS.leaseLost, onLost);
    try {
      const a = await cluster.add({ leaseTtl: 300 });
      const b = await cluster.add({ forwardTimeout: 200, retryInterval: 50 });
      const xc = a.controller.createExchange({ timeout: 30_000 });
      const { correlationId } = xc.registerRequest();
      await sleep(30);
      // As if the lease had expired while the owner was cut off (others may have rolled its IDs back):
      // at its next renewal the owner fences itself.
      await cluster.admin.del(`${cluster.prefix}live:{${a.backplane.instanceId}}`);
      const result = await xc.wait();
      expect(result.status).toBe('aborted');
      expect(result.reason).toMatchObject({ code: 'ERR_RRXC_BACKPLANE', failure: 'transport' });
      expect(result.unanswered).toEqual([correlationId]);
      expect(lost).toEqual([expect.objectContaining({ instanceId: a.backplane.instanceId, found: null })]);
      expect(await b.controller.registerResponse({ correlationId, message: 'later' })).toBe('rolled-back');
      expect(await a.controller.registerResponse({ correlationId, message: 'direct' })).toBe('rolled-back');
      // The controller stays open, and the renewed lease serves new exchanges.
      const next = a.controller.createExchange({ timeout: 5_000 });
      const fresh = next.registerRequest();
      expect(await b.controller.registerResponse({ correlationId: fresh.correlationId, message: 'ok' })).toBe('delivered');
    } finally {
      unsubscribe(REDIS_CHANNELS.leaseLost, onLost);
    }
  });
});

describe('RedisBackplane while fenced', () => {
  it('ends every exchange it must with the one reason it was fenced for, not a new error per reply', async () => {
    let now = Date.now();
    const clock = {
      now: (): number => now,
      setTimeout: (callback: () => void, ms: number): unknown => setTimeout(callback, ms),
      clearTimeout: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout),
    };
    const backplane = await RedisBackplane.connect({ url: server.url, prefix: cluster.prefix, leaseTtl: 10_000, clock });
    const controller = new Controller<string, string>({ backplane, clock });
    try {
      const first = controller.createExchange();
      const { correlationId } = first.registerRequest();
      now += 20_000; // the lease has lapsed by this instance's clock
      expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
      for (let i = 0; i < 3; i++) expect(backplane.checkLease()).toBe(false);
      const second = controller.createExchange();
      second.registerRequest();
      const [a, b] = await Promise.all([first.wait(), second.wait()]);
      expect([a.status, b.status]).toEqual(['aborted', 'aborted']);
      expect(a.reason).toMatchObject({ code: 'ERR_RRXC_BACKPLANE', message: expect.stringMatching(/^lease lost: .*could not renew/) });
      expect(b.reason).toBe(a.reason);
    } finally {
      await controller.close();
    }
  });
});

describe('RedisBackplane wire protocol', () => {
  it('delivers a resent forward once and acknowledges every copy with the same outcome', async () => {
    const a = await cluster.add();
    const xc = a.controller.createExchange({ timeout: 5_000 });
    const { correlationId } = xc.registerRequest();
    xc.registerRequest();
    const listener = cluster.admin.duplicate();
    const acks: string[] = [];
    await listener.subscribe(`${cluster.prefix}in:probe`);
    listener.on('message', (_channel, message: string) => acks.push(message));

    const message = `f\nprobe\n7\n0\n${correlationId.length}\n${correlationId}"once"`;
    const forward = `${message.length}:${message}`;
    for (let i = 0; i < 3; i++) await cluster.admin.publish(`${cluster.prefix}in:${a.backplane.instanceId}`, forward);
    await sleep(100);
    listener.disconnect();

    // Acknowledgements of one event-loop turn share a message: count the frames.
    const ack = 'a\n7\ndelivered';
    expect(acks.join('')).toBe(`${ack.length}:${ack}`.repeat(3));
    expect(xc.getResponse(correlationId)).toBe('once');
  });
});

describe('RedisBackplane when Redis is unreachable', () => {
  it('rejects connect() with a clear error within connectTimeout when Redis is down at start', async () => {
    const port = await freePort();
    const before = process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'Timeout').length;
    const started = Date.now();
    const error = await RedisBackplane.connect({ url: `redis://127.0.0.1:${port}`, connectTimeout: 300 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(BackplaneError);
    expect(error).toMatchObject({ code: 'ERR_RRXC_BACKPLANE', failure: 'transport' });
    expect((error as Error).message).toMatch(/ECONNREFUSED|not connected/);
    expect(Date.now() - started).toBeLessThan(1_500);
    await sleep(20);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'Timeout').length).toBeLessThanOrEqual(before);
  });

  it('times connect() with an injected clock written as a class', async () => {
    const port = await freePort();
    const clock = new ManualClock();
    const connecting = RedisTagStore.connect({ url: `redis://127.0.0.1:${port}`, connectTimeout: 300, clock }).catch((e: unknown) => e);
    await sleep(20);
    clock.advance(300);
    const error = await connecting;
    // The connect timeout fired on the injected clock — not a TypeError from calling its methods unbound.
    expect((error as Error).message).toMatch(/not connected within 300 ms/);
    expect(clock.pending).toBe(0);
  });

  it('rejects the settings it now takes from its controller', () => {
    for (const moved of ['rollbackTag', 'rollbackTtl', 'duplicateWindow']) {
      expect(() => new RedisBackplane({ url: cluster.url, [moved]: 1 } as never)).toThrow(expect.objectContaining({ code: 'ERR_RRXC_INVALID_ARGUMENT' }));
    }
  });

  it('leaves connections it was given open when closed, and closes the ones it made', async () => {
    const given = cluster.admin.duplicate();
    const backplane = await RedisBackplane.connect({ redis: given, prefix: cluster.prefix });
    const controller = new Controller({ backplane, tagStore: backplane.tagStore });
    await controller.close();
    expect(given.status).toBe('ready');
    expect(await given.ping()).toBe('PONG');
    given.disconnect();
  });
});

async function serverTime(c: Cluster): Promise<number> {
  const [seconds, micros] = await c.admin.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
