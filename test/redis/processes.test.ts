import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeys } from '../helpers/redis-keys.js';
import { uniquePrefix, useRedis, type TestRedis } from '../helpers/redis-server.js';
import { sleep } from '../helpers/redis-instances.js';

const FIXTURE = fileURLToPath(new URL('../helpers/redis-child-instance.ts', import.meta.url));

/** A service instance in a child process, answering IPC commands. */
class Child {
  readonly events: Record<string, unknown>[] = [];
  #ref = 0;
  readonly #replies = new Map<number, (reply: Record<string, unknown>) => void>();

  private constructor(readonly process: ChildProcess) {
    process.on('message', (message: Record<string, unknown>) => {
      if (typeof message['ref'] === 'number') this.#replies.get(message['ref'])?.(message);
      else this.events.push(message);
    });
  }

  static async start(env: Record<string, string>): Promise<Child> {
    const child = new Child(fork(FIXTURE, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    await child.next('ready');
    return child;
  }

  call(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    const ref = ++this.#ref;
    return new Promise((resolve) => {
      this.#replies.set(ref, resolve);
      this.process.send({ ...command, ref });
    });
  }

  async next(event: string): Promise<Record<string, unknown>> {
    for (;;) {
      const found = this.events.find((e) => e['event'] === event);
      if (found !== undefined) {
        this.events.splice(this.events.indexOf(found), 1);
        return found;
      }
      await once(this.process, 'message');
    }
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = once(this.process, 'exit');
    this.process.kill('SIGKILL');
    await exited;
  }
}

let server: TestRedis;
let admin: Redis;
let children: Child[] = [];
let prefix: string;

beforeAll(async () => {
  server = await useRedis();
  admin = new Redis(server.url);
});
afterAll(async () => {
  admin.disconnect();
  await server.stop();
});
afterEach(async () => {
  await Promise.all(children.map((c) => c.stop()));
  children = [];
  await deleteKeys(admin, prefix);
});

async function startInstances(count: number, leaseTtl = 10_000): Promise<Child[]> {
  prefix = uniquePrefix('processes');
  const env = { REDIS_URL: server.url, RRXC_PREFIX: prefix, RRXC_LEASE_TTL: String(leaseTtl) };
  children = await Promise.all(Array.from({ length: count }, () => Child.start(env)));
  return children;
}

describe('RedisBackplane across separate Node processes', () => {
  it('delivers in the owner process a reply that reached another process', async () => {
    const [owner, other] = await startInstances(2);
    const { ids } = (await owner!.call({ op: 'register', timeout: 10_000, ids: [null, 'proc-order-1'] })) as { ids: string[] };
    await sleep(50);

    expect(await other!.call({ op: 'respond', correlationId: ids[0], message: { n: 1 } })).toEqual({ ref: 1, outcome: 'delivered' });
    expect(await other!.call({ op: 'respond', correlationId: ids[1], message: { n: 2 } })).toEqual({ ref: 2, outcome: 'delivered' });
    expect(await owner!.next('ended')).toMatchObject({ status: 'completed', responses: [{ n: 1 }, { n: 2 }] });
    expect((await owner!.call({ op: 'close' }))['error']).toBeUndefined();
  });

  it('rolls back the pending IDs of an owner killed with SIGKILL once its lease lapses', async () => {
    const [owner, other] = await startInstances(2, 600);
    const { ids } = (await owner!.call({ op: 'register', timeout: 60_000, ids: [null, 'proc-killed-1'] })) as { ids: string[] };
    await sleep(50);
    await owner!.stop(); // kill -9: nothing tagged, nothing cleaned up

    const started = Date.now();
    const outcomes: unknown[] = [];
    for (const correlationId of ids) {
      let reply: Record<string, unknown>;
      // While the lease lives the owner may still deliver: an explicit error, never a guess.
      do {
        reply = await other!.call({ op: 'respond', correlationId, message: 'late' });
        if (reply['error'] !== undefined) expect(reply['error']).toMatchObject({ code: 'ERR_RRXC_BACKPLANE' });
      } while (reply['error'] !== undefined && Date.now() - started < 5_000);
      outcomes.push(reply['outcome']);
    }
    expect(outcomes).toEqual(['rolled-back', 'rolled-back']);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await other!.call({ op: 'isRolledBack', correlationId: ids[0] }))['value']).toBe(true);
    expect((await other!.call({ op: 'respond', correlationId: ids[1], message: 'again' }))['outcome']).toBe('rolled-back');
  });

  it('never rolls back the IDs of a killed owner while its lease still lives, though their deadline passed: unknown, an error', async () => {
    const [owner, other] = await startInstances(2, 30_000);
    const { ids } = (await owner!.call({ op: 'register', timeout: 200, ids: [null] })) as { ids: string[] };
    await sleep(50);
    await owner!.stop();
    await sleep(200 + 1_000 + 100); // deadline + deadlineGrace: no longer a reason while the lease lives

    expect((await other!.call({ op: 'respond', correlationId: ids[0], message: 'late' }))['error']).toMatchObject({ code: 'ERR_RRXC_BACKPLANE' });
    expect((await other!.call({ op: 'isRolledBack', correlationId: ids[0] }))['value']).toBe(false);
  });
});
