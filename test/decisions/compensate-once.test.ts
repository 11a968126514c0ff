// Two consumers sharing one tag store receive the same late reply at the same
// moment: exactly one compensates. Issue #12, item 3.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/index.js';
import { RedisTagStore } from '../../src/redis/index.js';
import { compensatingConsumer } from '../helpers/compensating-consumer.js';
import { inFlight } from '../helpers/in-flight.js';
import { redisForFile } from '../helpers/redis-for-file.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { uniquePrefix } from '../helpers/redis-server.js';

const redis = redisForFile();
const CHILD = fileURLToPath(new URL('../helpers/compensating-child.ts', import.meta.url));
const COPIES = 1_000;

/** Rolls back `count` IDs: a requester's exchange that times out with all of them unanswered. */
async function rolledBackIds(store: RedisTagStore, count: number): Promise<string[]> {
  const requester = new Controller<string, string>({ tagStore: store });
  const xc = requester.createExchange({ timeout: 1 });
  const ids = Array.from({ length: count }, (_, i) => `late-${i}`);
  for (const id of ids) void xc.registerRequest({ correlationId: id }).response.catch(() => {});
  expect((await xc.wait()).unanswered).toHaveLength(count);
  await requester.close();
  return ids;
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Every ID compensated exactly once over all consumers. */
function expectOnceEach(ids: readonly string[], ...compensations: (readonly string[])[]): void {
  const counts = new Map<string, number>();
  for (const id of compensations.flat()) counts.set(id, (counts.get(id) ?? 0) + 1);
  expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
  expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([]);
}

describe('compensating a late reply once across consumers that share a RedisTagStore', () => {
  it(`two controllers in one process, ${COPIES} late replies each received by both at once`, async () => {
    const prefix = uniquePrefix('compensate-once');
    const setup = await RedisTagStore.connect({ url: redis.url, prefix });
    const [a, b] = await Promise.all([compensatingConsumer(redis.url, prefix), compensatingConsumer(redis.url, prefix)]);
    try {
      const ids = await rolledBackIds(setup, COPIES);
      const decisions = await Promise.all(shuffled(ids.flatMap((id) => [() => a.handle({ id }), () => b.handle({ id })])).map((handle) => handle()));
      expect(decisions.every((d) => d.action === 'ack' && d.outcome === 'rolled-back')).toBe(true);
      expect(decisions.filter((d) => d.compensated)).toHaveLength(COPIES);
      expectOnceEach(ids, a.compensated, b.compensated);
    } finally {
      await Promise.all([a.close(), b.close(), setup.close()]);
      await deleteKeys(redis.connection, prefix);
    }
  });

  it(`two processes, ${COPIES} late replies each received by both at once`, async () => {
    const prefix = uniquePrefix('compensate-once-processes');
    const setup = await RedisTagStore.connect({ url: redis.url, prefix });
    const local = await compensatingConsumer(redis.url, prefix);
    const child = fork(CHILD, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, REDIS_URL: redis.url, RRXC_PREFIX: prefix }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      const [ready] = (await once(child, 'message')) as [{ ready: boolean }];
      expect(ready.ready).toBe(true);
      const ids = await rolledBackIds(setup, COPIES);
      const childDone = once(child, 'message') as Promise<[{ compensated: string[]; actions: string[] }]>;
      const at = Date.now() + 300;
      // Each side in its own random order, eight at a time as a consumer with
      // a prefetch would: all at once, whichever side's batch of claims
      // reached Redis first took every one, and nothing was raced.
      child.send({ ids: shuffled(ids), at });
      await new Promise((resolve) => setTimeout(resolve, at - Date.now()));
      const [[remote], decisions] = await Promise.all([childDone, inFlight(8, shuffled(ids), (id) => local.handle({ id }))]);
      expect([...decisions.map((d) => d.action), ...remote.actions].every((action) => action === 'ack')).toBe(true);
      // Both took part: the race was raced, not won by whoever started first.
      expect(local.compensated.length * remote.compensated.length).toBeGreaterThan(0);
      expectOnceEach(ids, local.compensated, remote.compensated);
    } finally {
      if (child.exitCode === null) child.kill();
      await Promise.all([local.close(), setup.close()]);
      await deleteKeys(redis.connection, prefix);
    }
  });
});
