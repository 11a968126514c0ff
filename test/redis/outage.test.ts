import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHANNELS, type ResponseOutcome } from '../../src/index.js';
import { REDIS_CHANNELS, RedisBackplane, type RedisErrorMessage } from '../../src/redis/index.js';
import { startRedisServer, type OwnRedisServer } from '../helpers/redis-server.js';
import { Cluster, sleep } from '../helpers/redis-instances.js';

let server: OwnRedisServer;
let cluster: Cluster;
let reported: RedisErrorMessage[];
const onRedisError = (message: unknown): void => void reported.push(message as RedisErrorMessage);
const onStoreError = (): void => undefined;

beforeEach(async () => {
  server = await startRedisServer();
  cluster = new Cluster(server.url, 'outage');
  reported = [];
  subscribe(REDIS_CHANNELS.error, onRedisError);
  subscribe(CHANNELS.tagStoreError, onStoreError);
});
afterEach(async () => {
  unsubscribe(REDIS_CHANNELS.error, onRedisError);
  unsubscribe(CHANNELS.tagStoreError, onStoreError);
  await server.start(); // so that cleanup can delete keys
  await cluster.cleanup();
  await server.stop();
});

const fast = { commandTimeout: 300, forwardTimeout: 300, retryInterval: 50, leaseTtl: 1_500, connectTimeout: 1_000 };

describe('RedisBackplane when Redis is lost mid-run and comes back', () => {
  it('fails replies explicitly and quickly during the outage; a restarted, empty Redis fences the owner, whose IDs then roll back everywhere', async () => {
    const a = await cluster.add(fast, { storeTimeout: 500 });
    const b = await cluster.add(fast, { storeTimeout: 500 });
    const xc = a.controller.createExchange({ timeout: 30_000 });
    const { correlationId } = xc.registerRequest();
    const local = xc.registerRequest();
    // Written (a generated ID's registration goes out with the next write, within a few ms) before Redis goes.
    await sleep(50);

    await server.stop();
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const error = await b.controller.registerResponse({ correlationId, message: `during-${i}` }).then(
        (outcome) => outcome,
        (e: unknown) => e,
      );
      expect(error, 'an outcome during the outage').toMatchObject({ code: expect.stringMatching(/^ERR_RRXC_(TAG_STORE|BACKPLANE)$/) });
      expect(Date.now() - started).toBeLessThan(1_500);
    }
    // The owner's registrations during the outage are not lost silently.
    a.controller.createExchange().registerRequest({ correlationId: 'registered-during-outage' });
    await sleep(300);
    expect(reported).toContainEqual(expect.objectContaining({ operation: 'register', correlationIds: ['registered-during-outage'] }));
    // The owner's own replies are refused while it cannot record them: an
    // unrecorded delivery could be rolled back by another instance, should
    // this one crash before Redis is back (issue #12).
    await expect(a.controller.registerResponse({ correlationId: local.correlationId, message: 'local' })).rejects.toMatchObject({ code: 'ERR_RRXC_BACKPLANE', failure: 'transport' });
    expect(a.controller.hasRequest(local.correlationId)).toBe(true);

    // The restarted Redis lost the owner's lease, so others may have rolled
    // its IDs back meanwhile: the owner ends its exchanges rather than deliver.
    await server.start();
    const result = await xc.wait();
    expect(result.status).toBe('aborted');
    expect(result.reason).toMatchObject({ code: 'ERR_RRXC_BACKPLANE', failure: 'transport' });
    expect(result.unanswered).toEqual([correlationId, local.correlationId]);

    const outcomes: (ResponseOutcome | string)[] = [];
    const started = Date.now();
    for (;;) {
      const outcome = await b.controller.registerResponse({ correlationId, message: 'after' }).catch((e: { code: string }) => e.code);
      outcomes.push(outcome);
      if (outcome === 'rolled-back' || Date.now() - started > 10_000) break;
      await sleep(100);
    }
    expect(outcomes.at(-1)).toBe('rolled-back');
    expect(outcomes).not.toContain('delivered');
    expect(await b.controller.isRolledBack(correlationId)).toBe(true);
  });

  it('delivers exactly once after connections were cut while Redis kept its data', async () => {
    const a = await cluster.add(fast, { storeTimeout: 500 });
    const b = await cluster.add(fast, { storeTimeout: 500 });
    const xc = a.controller.createExchange({ timeout: 30_000 });
    const { correlationId } = xc.registerRequest();

    await cluster.admin.client('KILL', 'TYPE', 'pubsub');
    await cluster.admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    const outcomes: (ResponseOutcome | string)[] = [];
    const started = Date.now();
    for (;;) {
      const outcome = await b.controller.registerResponse({ correlationId, message: 'after' }).catch((e: { code: string }) => e.code);
      outcomes.push(outcome);
      if (outcome === 'delivered' || Date.now() - started > 10_000) break;
      await sleep(100);
    }
    expect(outcomes.at(-1)).toBe('delivered');
    expect(outcomes.filter((o) => o === 'delivered')).toHaveLength(1);
    expect(outcomes.every((o) => ['delivered', 'ERR_RRXC_BACKPLANE'].includes(o))).toBe(true);
    const result = await xc.wait();
    expect(result.status).toBe('completed');
    expect(result.entries.map((e) => e.response)).toEqual(['after']);
  });

  it('ends its open exchanges by itself when it cannot renew its lease within leaseTtl (fencing)', async () => {
    const a = await cluster.add(fast);
    const xc = a.controller.createExchange({ timeout: 30_000 });
    xc.registerRequest();
    await server.stop();
    // No renewal can reach Redis: by leaseTtl (1.5 s) the lease may be gone, and with it the claim on these IDs.
    const result = await xc.wait();
    expect(result.status).toBe('aborted');
    expect(result.reason).toMatchObject({ code: 'ERR_RRXC_BACKPLANE', failure: 'transport', message: expect.stringMatching(/^lease lost/) });
    expect(a.controller.openExchanges).toBe(0);
  });

  it('starts answering again on its own once Redis is back, within its reconnect delay', async () => {
    const a = await cluster.add(fast);
    const b = await cluster.add(fast);
    await server.stop();
    await sleep(300);
    await server.start();

    const started = Date.now();
    let outcome: unknown;
    do {
      const xc = a.controller.createExchange({ timeout: 5_000 });
      const { correlationId } = xc.registerRequest();
      outcome = await b.controller.registerResponse({ correlationId, message: 1 }).catch((e: { code: string }) => e.code);
      xc.close();
      if (outcome !== 'delivered') await sleep(100);
    } while (outcome !== 'delivered' && Date.now() - started < 10_000);
    expect(outcome).toBe('delivered');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('does not hang ready() of a backplane made while Redis is down', async () => {
    await server.stop();
    const backplane = new RedisBackplane({ url: server.url, prefix: cluster.prefix, connectTimeout: 300 });
    const started = Date.now();
    await expect(backplane.ready()).rejects.toMatchObject({ code: 'ERR_RRXC_BACKPLANE', failure: 'transport' });
    expect(Date.now() - started).toBeLessThan(1_000);
    await backplane.close();
  });
});

describe('RedisBackplane when Redis forgets its scripts', () => {
  it('sends them again in full after SCRIPT FLUSH, for the pending set, ownership records and their end', async () => {
    const a = await cluster.add(fast);
    const b = await cluster.add(fast);
    const pending = `${cluster.prefix}p:{${a.backplane.instanceId}}`;
    // Loaded once, as in a running service.
    const warm = a.controller.createExchange({ timeout: 5_000 });
    expect(await b.controller.registerResponse({ correlationId: warm.registerRequest().correlationId, message: 0 })).toBe('delivered');
    await warm.wait();

    expect(await cluster.admin.script('FLUSH')).toBe('OK');
    const xc = a.controller.createExchange({ timeout: 5_000 });
    const generated = xc.registerRequest();
    const chosen = xc.registerRequest({ correlationId: `chosen-${cluster.prefix}` });
    await sleep(50);
    expect(await cluster.admin.zscore(pending, generated.correlationId)).not.toBeNull();
    expect(await cluster.admin.get(`${cluster.prefix}o:{${chosen.correlationId}}`)).toMatch(/^p\|/);

    await cluster.admin.script('FLUSH');
    expect(await b.controller.registerResponse({ correlationId: generated.correlationId, message: 1 })).toBe('delivered');
    expect(await b.controller.registerResponse({ correlationId: chosen.correlationId, message: 2 })).toBe('delivered');
    expect((await xc.wait()).status).toBe('completed');

    await cluster.admin.script('FLUSH');
    const next = a.controller.createExchange({ timeout: 5_000 });
    expect(await b.controller.registerResponse({ correlationId: next.registerRequest().correlationId, message: 3 })).toBe('delivered');
    await next.wait();
    await sleep(50);
    expect(await cluster.admin.zcard(pending)).toBe(0);
    expect(await cluster.admin.get(`${cluster.prefix}o:{${chosen.correlationId}}`)).toMatch(/^a\|/);
    expect(reported).toEqual([]);
  });
});
