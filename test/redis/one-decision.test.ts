// Issue #12, the Redis backplane's part: one decision per correlation ID,
// cluster-wide. Each scenario runs on a redis-server this file starts itself
// (fault injection: CLIENT KILL, CLIENT PAUSE, an empty restart), never the
// shared one. Scenario numbers are the issue's.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Controller, type ResponseOutcome } from '../../src/index.js';
import { RedisBackplane } from '../../src/redis/index.js';
import { GatedTagStore } from '../helpers/gated-tag-store.js';
import { Cluster, sleep } from '../helpers/redis-instances.js';
import { answeredRecords } from '../helpers/redis-keys.js';
import { startRedisServer, type OwnRedisServer } from '../helpers/redis-server.js';

const FIXTURE = fileURLToPath(new URL('../helpers/redis-child-instance.ts', import.meta.url));
const fast = { commandTimeout: 500, forwardTimeout: 300, retryInterval: 50, connectTimeout: 1_000 };

/** An owner in a child process (test/helpers/redis-child-instance.ts), to be killed with SIGKILL. */
class Owner {
  readonly events: Record<string, unknown>[] = [];
  #ref = 0;
  readonly #replies = new Map<number, (reply: Record<string, unknown>) => void>();
  instanceId = '';

  private constructor(readonly process: ChildProcess) {
    process.on('message', (message: Record<string, unknown>) => {
      if (typeof message['ref'] === 'number') this.#replies.get(message['ref'])?.(message);
      else this.events.push(message);
    });
  }

  static async start(env: Record<string, string>): Promise<Owner> {
    const owner = new Owner(fork(FIXTURE, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    for (;;) {
      const ready = owner.events.find((e) => e['event'] === 'ready');
      if (ready !== undefined) {
        owner.instanceId = ready['instanceId'] as string;
        return owner;
      }
      await once(owner.process, 'message');
    }
  }

  call(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    const ref = ++this.#ref;
    return new Promise((resolve) => {
      this.#replies.set(ref, resolve);
      this.process.send({ ...command, ref });
    });
  }

  /** The IDs whose replies the owner's exchanges received: delivered there. */
  delivered(): string[] {
    return this.events.filter((e) => e['event'] === 'delivered').map((e) => e['correlationId'] as string);
  }

  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = once(this.process, 'exit');
    this.process.kill('SIGKILL');
    await exited;
  }
}

/** The client ID of the command connection (not the subscriber) named `name`. */
async function commandConnection(admin: Redis, name: string): Promise<string> {
  const list = (await admin.client('LIST')) as string;
  const line = list.split('\n').find((l) => l.includes(` name=${name} `) && / sub=0 /.test(l) && / psub=0 /.test(l));
  if (line === undefined) throw new Error(`no command connection named ${name}`);
  return /^id=(\d+)/.exec(line)![1]!;
}

/** An outcome, or the code of the error it rejected with. */
const settled = (promise: Promise<ResponseOutcome>): Promise<string> => promise.catch((e: { code?: string }) => e.code ?? String(e));

/** Asks until the answer is an outcome (not an error), for at most `ms`. */
async function outcomeOf(ask: () => Promise<string>, ms: number): Promise<string[]> {
  const answers: string[] = [];
  const started = Date.now();
  for (;;) {
    const answer = await ask();
    answers.push(answer);
    if (!answer.startsWith('ERR_') || Date.now() - started > ms) return answers;
    await sleep(100);
  }
}

let server: OwnRedisServer;
let cluster: Cluster;
let owners: Owner[] = [];

beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server.stop();
});
beforeEach((context) => {
  cluster = new Cluster(server.url, context.task.name.replace(/\W+/g, '-').slice(0, 40));
});
afterEach(async () => {
  await Promise.all(owners.map((o) => o.kill()));
  owners = [];
  await server.start();
  await cluster.cleanup();
});

async function startOwner(name: string, env: Record<string, string> = {}): Promise<Owner> {
  const owner = await Owner.start({
    REDIS_URL: server.url,
    RRXC_PREFIX: cluster.prefix,
    RRXC_NAME: name,
    RRXC_RECONNECT_MS: '100',
    RRXC_OPTIONS: JSON.stringify({ backplane: { forwardTimeout: 300, retryInterval: 50, commandTimeout: 500 }, controller: { storeTimeout: 500 } }),
    ...env,
  });
  owners.push(owner);
  return owner;
}

describe('scenario 1: an owner that cannot record "answered" never lets a later rollback contradict a delivery', () => {
  it('delivers nothing while its command connection is down; after its SIGKILL, late copies are rolled back, and nothing was delivered', async () => {
    const name = `owner-down-${Date.now()}`;
    const owner = await startOwner(name, { RRXC_LEASE_TTL: '1000', RRXC_RECONNECT_MS: '5000' });
    const b = await cluster.add(fast, { storeTimeout: 500 });
    const { ids } = (await owner.call({ op: 'register', timeout: 60_000, ids: [null, `chosen-${name}`, null] })) as { ids: string[] };
    const [forwarded, chosen, direct] = ids as [string, string, string];
    await sleep(100); // the pending set and the ownership record are written

    await cluster.admin.client('KILL', 'ID', await commandConnection(cluster.admin, name));
    await sleep(50);
    const viaB = [settled(b.controller.registerResponse({ correlationId: forwarded, message: 'f' })), settled(b.controller.registerResponse({ correlationId: chosen, message: 'c' }))];
    const own = await owner.call({ op: 'respond', correlationId: direct, message: 'd' });
    await sleep(150); // the forwards reached the owner
    await owner.kill();
    const told = { [forwarded]: await viaB[0]!, [chosen]: await viaB[1]!, [direct]: (own['outcome'] as string | undefined) ?? (own['error'] as { code: string }).code };

    await sleep(1_100); // the lease lapsed
    for (const id of ids) {
      const late = await outcomeOf(() => settled(b.controller.registerResponse({ correlationId: id, message: 'late' })), 3_000);
      const deliveredAtOwner = owner.delivered().includes(id) || told[id] === 'delivered';
      // Never delivered and rolled back: what the owner delivered is not rolled back later.
      if (deliveredAtOwner) expect(late.at(-1), `${id}: delivered, then`).not.toBe('rolled-back');
      // This owner could not record a delivery, so it made none: the late copy is an honest rollback.
      expect(deliveredAtOwner, `${id} was delivered while the owner could not record it (told ${told[id]})`).toBe(false);
      expect(late.at(-1)).toBe('rolled-back');
      expect(await b.controller.isRolledBack(id)).toBe(true);
    }
    expect(told[direct]).toBe('ERR_RRXC_BACKPLANE');
  }, 20_000);

  it('delivers once the connection is back, recorded before the forwarder hears of it: after its SIGKILL, late copies are duplicate, not rolled back', async () => {
    const name = `owner-blip-${Date.now()}`;
    const owner = await startOwner(name, { RRXC_LEASE_TTL: '1000', RRXC_RECONNECT_MS: '400' });
    const b = await cluster.add({ ...fast, forwardTimeout: 1_500 }, { storeTimeout: 500 });
    const { ids } = (await owner.call({ op: 'register', timeout: 60_000, ids: [null, `chosen-${name}`] })) as { ids: string[] };
    await sleep(100);

    await cluster.admin.client('KILL', 'ID', await commandConnection(cluster.admin, name));
    await sleep(20);
    const told = await Promise.all(ids.map((correlationId) => settled(b.controller.registerResponse({ correlationId, message: 'once' }))));
    expect(told).toEqual(['delivered', 'delivered']);
    // The owner hands a reply over when the script that acknowledged it answers: its report may come a moment after.
    await vi.waitFor(() => expect(owner.delivered().sort()).toEqual([...ids].sort()), { timeout: 2_000 });
    await owner.kill();

    await sleep(1_100); // the lease lapsed
    for (const id of ids) {
      const late = await outcomeOf(() => settled(b.controller.registerResponse({ correlationId: id, message: 'late' })), 3_000);
      expect(late.at(-1), `${id}, delivered, then`).toBe('duplicate');
      expect(await b.controller.isRolledBack(id)).toBe(false);
    }
  }, 20_000);
});

describe('scenario 2: the forwarder is told what the owner did with its copy', () => {
  it('answers delivered for the copy the owner delivered, though its acknowledgement was lost (the forwarder settles through Redis)', async () => {
    const a = await cluster.add(fast);
    // B's subscriber stays down for 5 s once killed: every acknowledgement to B is lost meanwhile.
    const command = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    const subscriber = new Redis(server.url, { retryStrategy: () => 5_000, maxRetriesPerRequest: 1 });
    subscriber.on('error', () => undefined);
    command.on('error', () => undefined);
    const subscriberId = String(await subscriber.client('ID'));
    const backplane = await RedisBackplane.connect({ redis: command, subscriber, prefix: cluster.prefix, ...fast });
    const b = { controller: new Controller({ backplane, tagStore: backplane.tagStore }) };
    try {
      const xc = a.controller.createExchange({ timeout: 30_000 });
      const generated = xc.registerRequest();
      const chosen = xc.registerRequest({ correlationId: `chosen-${cluster.prefix}` });
      await sleep(100);
      await cluster.admin.client('KILL', 'ID', subscriberId);
      await sleep(50);

      expect(await settled(b.controller.registerResponse({ correlationId: generated.correlationId, message: 1 }))).toBe('delivered');
      expect(await settled(b.controller.registerResponse({ correlationId: chosen.correlationId, message: 2 }))).toBe('delivered');
      expect(await generated.response).toBe(1);
      expect(await chosen.response).toBe(2);
      // Another copy is a duplicate, never delivered again.
      expect(await settled(b.controller.registerResponse({ correlationId: generated.correlationId, message: 3 }))).toBe('duplicate');
    } finally {
      await b.controller.close();
      command.disconnect();
      subscriber.disconnect();
    }
  }, 20_000);

  it('under CLIENT PAUSE right after the owner delivered, the forwarder is told delivered (or, at worst, an honest error), never duplicate', async () => {
    const a = await cluster.add({ ...fast, commandTimeout: 3_000 });
    const b = await cluster.add({ ...fast, commandTimeout: 3_000 });
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const xc = a.controller.createExchange({ timeout: 30_000 });
      const { correlationId, response } = xc.registerRequest();
      await sleep(50);
      const told = settled(b.controller.registerResponse({ correlationId, message: i }));
      await response;
      await cluster.admin.call('CLIENT', 'PAUSE', '1500', 'ALL');
      outcomes.push(await told);
      await sleep(1_600);
    }
    expect(outcomes.every((o) => o === 'delivered' || o === 'ERR_RRXC_BACKPLANE'), outcomes.join()).toBe(true);
  }, 30_000);
});

describe('a rollback the backplane writes is a claim against the committed tag', () => {
  it('answers committed, and writes no rollback tag, for the IDs of a SIGKILLed owner that a worker claimed committed', async () => {
    const owner = await startOwner(`owner-committed-${Date.now()}`, { RRXC_LEASE_TTL: '1000' });
    const b = await cluster.add(fast, { storeTimeout: 500 });
    const { ids } = (await owner.call({ op: 'register', timeout: 60_000, ids: [null, `chosen-committed-${cluster.prefix}`] })) as { ids: string[] };
    await sleep(100);
    for (const id of ids) expect(await b.backplane.tagStore.claim(id, 'committed', 60_000, ['rollback'])).toBeUndefined();
    await owner.kill();
    await sleep(1_100); // the lease lapsed

    for (const id of ids) {
      const late = await outcomeOf(() => settled(b.controller.registerResponse({ correlationId: id, message: 'late' })), 3_000);
      expect(late.at(-1), id).toBe('committed');
      expect(await b.controller.isRolledBack(id)).toBe(false);
      expect(await settled(b.controller.registerResponse({ correlationId: id, message: 'again' }))).toBe('committed');
    }
  }, 20_000);
});

describe('scenario 6: after Redis restarts empty', () => {
  it('replies for the IDs of exchanges fenced while Redis was down are rolled back, once the owner is back: its failed writes are sent again', async () => {
    const a = await cluster.add({ ...fast, leaseTtl: 1_500 }, { storeTimeout: 500 });
    const b = await cluster.add({ ...fast, leaseTtl: 1_500 }, { storeTimeout: 500 });
    const xc = a.controller.createExchange({ timeout: 30_000 });
    const generated = xc.registerRequest().correlationId;
    const chosen = xc.registerRequest({ correlationId: `fenced-${cluster.prefix}` }).correlationId;
    await sleep(100);

    await server.stop();
    const result = await xc.wait(); // fenced: no renewal within leaseTtl
    expect(result.status).toBe('aborted');
    await server.start(); // empty
    await sleep(2_000); // reconnected, renewed, and the failed writes sent again

    for (const id of [generated, chosen]) {
      expect(await settled(b.controller.registerResponse({ correlationId: id, message: 'late' })), id).toBe('rolled-back');
      expect(await b.controller.isRolledBack(id)).toBe(true);
    }
  }, 20_000);

  it('a late copy of an answered ID the application chose, reaching a non-owner, is duplicate while its owner is alive', async () => {
    const a = await cluster.add({ ...fast, leaseTtl: 1_500 });
    const b = await cluster.add({ ...fast, leaseTtl: 1_500 });
    const id = `answered-${cluster.prefix}`;
    const result = await a.controller.synchronize({ timeout: 5_000 }, async (xc) => {
      xc.registerRequest({ correlationId: id });
      await sleep(50);
      expect(await b.controller.registerResponse({ correlationId: id, message: 'first' })).toBe('delivered');
    });
    expect(result.status).toBe('completed');
    await sleep(50);

    await server.stop();
    await server.start(); // empty: the `a|…` record naming the owner is gone
    await sleep(2_000); // the owner found its lease gone, and wrote its records again

    expect(await settled(b.controller.registerResponse({ correlationId: id, message: 'again' }))).toBe('duplicate');
  }, 20_000);
});

/**
 * A command connection whose commands can be held back, in order, as a slow
 * Redis round trip would: `hold()`, then `release()` sends them all.
 */
function gatedConnection(url: string): { redis: Redis; hold: () => void; release: () => void } {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  const send = redis.sendCommand.bind(redis);
  let held: (() => void)[] | undefined;
  redis.sendCommand = ((command: Parameters<Redis['sendCommand']>[0], stream?: Parameters<Redis['sendCommand']>[1]) => {
    if (held === undefined) return send(command, stream);
    held.push(() => void (send(command, stream) as Promise<unknown>).catch(() => undefined));
    return command.promise;
  }) as Redis['sendCommand'];
  return {
    redis,
    hold: () => (held ??= []),
    release: () => {
      const queued = held ?? [];
      held = undefined;
      for (const sendNow of queued) sendNow();
    },
  };
}

describe('scenario 1, forwarded (F5): Redis holds the delivery of a forwarded reply before the exchange gets it', () => {
  it('an owner SIGKILLed the moment it hands a forwarded reply to its exchange: that ID is never rolled back later (delivered or duplicate)', async () => {
    const b = await cluster.add(fast, { storeTimeout: 500 });
    for (const kind of ['generated', 'chosen']) {
      const name = `owner-dies-${kind}-${Date.now()}`;
      const owner = await startOwner(name, { RRXC_LEASE_TTL: '1000', RRXC_DIE_ON_FORWARDED: '1' });
      const exited = once(owner.process, 'exit');
      const { ids } = (await owner.call({ op: 'register', timeout: 60_000, ids: [kind === 'chosen' ? `chosen-${name}` : null] })) as { ids: string[] };
      const id = ids[0]!;
      await sleep(100);
      const told = settled(b.controller.registerResponse({ correlationId: id, message: 'once' }));
      const [, signal] = (await exited) as unknown as [number | null, string | null];
      expect(signal, `${kind}: the owner died delivering`).toBe('SIGKILL');
      // Recorded before it was handed over (a generated ID), or reserved (a chosen one): a delivery, or unknown while the dead owner's lease lives.
      expect(['delivered', 'ERR_RRXC_BACKPLANE']).toContain(await told);
      await sleep(1_100); // the lease lapsed
      const late = await outcomeOf(() => settled(b.controller.registerResponse({ correlationId: id, message: 'late' })), 3_000);
      expect(late.at(-1), `${kind}: handed to its exchange, then`).toBe('duplicate');
      expect(await b.controller.isRolledBack(id)).toBe(false);
    }
  }, 30_000);

  it('keeps the record of a forwarded delivery to a chosen ID past its exchange deadline: a copy at another instance is a duplicate for as long as the exchange is open, and the duplicate window after', async () => {
    const a = await cluster.add(fast, { duplicateWindow: 500 });
    const b = await cluster.add(fast);
    const xc = a.controller.createExchange({ timeout: 60_000 });
    const { correlationId } = xc.registerRequest({ correlationId: `long-${cluster.prefix}` });
    xc.registerRequest(); // keeps the exchange open
    await sleep(100);
    expect(await settled(b.controller.registerResponse({ correlationId, message: 1 }))).toBe('delivered');
    // Counted from the deadline (60 s away), not from the delivery: the exchange's end writes nothing more for it.
    expect(await cluster.admin.pttl(`${cluster.prefix}o:{${correlationId}}`)).toBeGreaterThan(55_000);
    expect(await settled(b.controller.registerResponse({ correlationId, message: 2 }))).toBe('duplicate');
    xc.close();
  });

  it('hands the forward over only once Redis recorded it; a reply that came before the timeout is delivered, and the exchange ends after it', async () => {
    const gated = gatedConnection(server.url);
    const backplane = await RedisBackplane.connect({ redis: gated.redis, prefix: cluster.prefix, ...fast, commandTimeout: 5_000 });
    const a = new Controller({ backplane, tagStore: backplane.tagStore, storeTimeout: 5_000 });
    const b = await cluster.add(fast, { storeTimeout: 2_000 });
    try {
      // (a) A long timeout: held back, the record keeps the reply from the exchange; released, it is delivered.
      const long = a.createExchange({ timeout: 30_000 });
      const first = long.registerRequest();
      let got = false;
      void first.response.then(() => (got = true));
      await sleep(100);
      gated.hold();
      const toldFirst = settled(b.controller.registerResponse({ correlationId: first.correlationId, message: 1 }));
      await sleep(200);
      expect(got, 'delivered before Redis held its record').toBe(false);
      gated.release();
      expect(await toldFirst).toBe('delivered');
      expect(got).toBe(true);
      expect((await answeredRecords(cluster.admin, cluster.prefix, backplane.instanceId)).get(first.correlationId)).toMatch(new RegExp(`^\\d+ ${b.backplane.instanceId} 1$`));
      long.close();

      // (b) Replies that reached their owner before the timeout, held while Redis records them
      // (a generated ID and one the application chose): the exchange ends only after, with
      // the replies, as Redis says; late copies are duplicates, never rolled back.
      const held = a.createExchange({ timeout: 300 });
      const racing = [held.registerRequest().correlationId, held.registerRequest({ correlationId: `racing-${cluster.prefix}` }).correlationId];
      const heldEnded = held.wait();
      await sleep(100);
      gated.hold();
      const told = racing.map((correlationId) => settled(b.controller.registerResponse({ correlationId, message: 2 })));
      await sleep(400); // the deadline passed meanwhile
      expect(held.state, 'ended while its replies were being recorded').toBe('sealed');
      gated.release();
      const result = await heldEnded;
      // Sealed, and answered in full: completed, as if handed over when they came.
      expect(result.status).toBe('completed');
      expect(result.unanswered).toEqual([]);
      expect(result.entries.map((e) => e.response)).toEqual([2, 2]);
      expect(await Promise.all(told)).toEqual(['delivered', 'delivered']);
      const [generated] = racing as [string, string];
      expect(await cluster.admin.zscore(`${cluster.prefix}p:{${backplane.instanceId}}`, generated)).toBeNull();
      await a.close();
      // The owner gone, Redis alone decides a late copy: as the user was told.
      for (const correlationId of racing) {
        expect(await settled(b.controller.registerResponse({ correlationId, message: 3 })), correlationId).toBe('duplicate');
        expect(await b.controller.isRolledBack(correlationId)).toBe(false);
      }
    } finally {
      await a.close().catch(() => undefined);
      gated.redis.disconnect();
    }
  }, 30_000);
});

describe('scenario 2, the deadline rule: a live owner that stalled after delivering is never contradicted', () => {
  it('an owner alive past deadline + grace, its record held up by a stalled event loop: the forwarder gets an honest error, a retry gets duplicate, nothing is rolled back', async () => {
    const name = `owner-stalls-${Date.now()}`;
    const owner = await startOwner(name); // lease 10 s
    const b = await cluster.add({ ...fast, deadlineGrace: 100 }, { storeTimeout: 500 });
    const { ids } = (await owner.call({ op: 'register', timeout: 300, ids: [null, `chosen-${name}`] })) as { ids: string[] };
    await sleep(100);
    const direct = owner.call({ op: 'respond-stall', ids, message: 'direct', stall: 2_500 });
    await sleep(500); // deadline (300 ms) + grace (100 ms) passed, the owner still stalled
    const told = await Promise.all(ids.map((correlationId) => settled(b.controller.registerResponse({ correlationId, message: 'copy' }))));
    expect(told).toEqual(['ERR_RRXC_BACKPLANE', 'ERR_RRXC_BACKPLANE']);
    expect((await direct)['outcomes']).toEqual(['delivered', 'delivered']);
    await sleep(300);
    for (const correlationId of ids) {
      // Scenario 2's promise: a retry after the error is answered what was decided.
      expect(await settled(b.controller.registerResponse({ correlationId, message: 'retry' })), correlationId).toBe('duplicate');
      expect(await b.controller.isRolledBack(correlationId)).toBe(false);
    }
  }, 20_000);
});

describe('scenario 6 / F3: an exchange that ended with its rollback claim not yet written', () => {
  it('a reply to a generated ID whose owner ended it unanswered is rolled back, never unmatched, while the claim is held up', async () => {
    const gate = new GatedTagStore();
    const a = await cluster.add(fast, { tagStore: gate, storeTimeout: 10_000 });
    const b = await cluster.add(fast, { storeTimeout: 1_000 });
    const xc = a.controller.createExchange({ timeout: 100 });
    const { correlationId } = xc.registerRequest();
    await sleep(400); // timed out; its end written, its claim held
    expect(gate.pendingWrites).toBeGreaterThan(0);
    expect(await settled(b.controller.registerResponse({ correlationId, message: 'late' }))).toBe('rolled-back');
    gate.release();
    expect((await xc.wait()).unanswered).toEqual([correlationId]);
    expect(await b.controller.isRolledBack(correlationId)).toBe(true);
  }, 20_000);
});

describe('scenario 6 / F6: a live owner whose sets Redis lost', () => {
  it('a reply to a generated ID of a live owner that does not answer and whose sets hold nothing is unknown (an error), not unmatched; unmatched once the owner is gone', async () => {
    const b = await cluster.add(fast);
    // A live lease, no pending set or answered hash (as after an empty restart, before the owner wrote again), nobody listening.
    await cluster.admin.set(`${cluster.prefix}live:{lost}`, 'x', 'PX', 1_500);
    const started = Date.now();
    expect(await b.controller.registerResponse({ correlationId: 'lost~1', message: 1 }).catch((e: unknown) => e)).toMatchObject({ code: 'ERR_RRXC_BACKPLANE', failure: 'owner-unreachable' });
    await sleep(1_600 - (Date.now() - started)); // the lease lapsed
    expect(await b.controller.registerResponse({ correlationId: 'lost~1', message: 1 })).toBe('unmatched');
  }, 20_000);
});
