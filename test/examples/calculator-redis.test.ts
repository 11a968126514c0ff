import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { start, type Calculator, type CalculatorOptions } from '../../examples/calculator/service.js';
import { deleteKeys, keysUnder } from '../helpers/redis-keys.js';
import { useRedis, type TestRedis } from '../helpers/redis-server.js';
import { AMQP_URL } from '../helpers/servers.js';

let redis: TestRedis;
let admin: Redis;
beforeAll(async () => {
  redis = await useRedis();
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  admin.disconnect();
  await redis.stop();
});

/** What a test started and must close and delete. */
let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

interface Instance {
  readonly calc: Calculator;
  readonly lines: string[];
}

/**
 * Two instances of one service: the same Redis prefix (and jobs queue), each
 * its own controller, backplane and connections; resolves once each knows
 * the other, as a user who starts the second and then sends a request.
 */
async function twoInstances(options: CalculatorOptions): Promise<[Instance, Instance]> {
  const redisPrefix = `rrxc-test:calc:${randomUUID()}`;
  cleanups.push(() => deleteKeys(admin, `${redisPrefix}:`));
  const started: Instance[] = [];
  for (let i = 0; i < 2; i++) {
    const lines: string[] = [];
    const calc = await start({ port: 0, redisUrl: redis.url, redisPrefix, log: (line) => lines.push(line), ...options });
    cleanups.push(() => calc.close());
    started.push({ calc, lines });
  }
  const [a, b] = started as [Instance, Instance];
  await vi.waitFor(() => {
    expect(a.calc.others).toEqual([b.calc.instanceId]);
    expect(b.calc.others).toEqual([a.calc.instanceId]);
  }, { timeout: 3_000 });
  return [a, b];
}

/** `count` requests `add(i, 1000)` sent at once, alternating between the instances. */
async function alternate(instances: readonly Instance[], count: number): Promise<{ status: number; body: unknown }[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const response = await fetch(`${instances[i % instances.length]!.calc.url}/calc?op=add&a=${i}&b=1000`);
      return { status: response.status, body: await response.json() };
    }),
  );
}

const expected = (count: number) => Array.from({ length: count }, (_, i) => ({ status: 200, body: expect.objectContaining({ job: `add(${i}, 1000)`, result: i + 1000 }) }));

/** Replies an instance received for the other one's requests, by the owner's outcome. */
const crossed = (instances: readonly Instance[], outcome: 'delivered' | 'rolled-back'): number =>
  instances.reduce((sum, { calc }) => sum + (calc.replies.crossed[outcome] ?? 0), 0);

function count(resource: 'TCPSocketWrap' | 'Timeout'): number {
  return process.getActiveResourcesInfo().filter((r) => r === resource).length;
}

describe('the calculator example, two instances on Redis', () => {
  it('answers every request right while every other reply crosses instances through the backplane', async () => {
    const instances = await twoInstances({ timeout: 5_000, maxDelay: 30 });
    const [a, b] = instances;
    expect(a.calc.transport).toBe('redis-list');
    expect(a.calc.mode).toBe('Redis backplane, a reply list per instance');
    expect(a.calc.instanceId).not.toBe(b.calc.instanceId);

    const count = 40;
    expect(await alternate(instances, count)).toEqual(expected(count));

    // Each instance sent every other answer of its 20 jobs to the other, whose backplane delivered it here.
    // (The receiver learns the owner's outcome just after the owner delivered it.)
    await vi.waitFor(() => expect(a.calc.replies.received + b.calc.replies.received).toBe(count));
    expect(a.calc.replies.crossed).toEqual({ delivered: 10 });
    expect(b.calc.replies.crossed).toEqual({ delivered: 10 });
    const crossings = [...a.lines, ...b.lines].filter((line) => / crossed instances: .* which answered delivered$/.test(line));
    expect(crossings).toHaveLength(2 * 10);
    for (const { calc, lines } of instances) {
      for (const line of lines.filter((l) => l.includes(' crossed instances: '))) {
        // Received here, owned by the other instance.
        expect(line).toContain(`received by ${calc.instanceId}, forwarded to its owner ${(calc === a.calc ? b : a).calc.instanceId}`);
      }
    }
  });

  it('shows a reply crossing from the first request of a run, and every other one after it', async () => {
    const [a, b] = await twoInstances({ timeout: 5_000, maxDelay: 0 });
    const crossedToB: number[] = [];
    for (let i = 1; i <= 4; i++) {
      const response = await fetch(`${a.calc.url}/calc?op=add&a=${i}&b=1`);
      expect(await response.json()).toMatchObject({ result: i + 1 });
      await vi.waitFor(() => expect(a.calc.replies.received + b.calc.replies.received).toBe(i));
      crossedToB.push(b.calc.replies.crossed.delivered ?? 0);
    }
    expect(crossedToB).toEqual([1, 1, 2, 2]);
    expect(a.calc.replies.crossed).toEqual({});
    expect(b.lines.filter((line) => line.includes(' crossed instances: '))).toHaveLength(2);
    expect(a.lines).toContain(`instance ${a.calc.instanceId}: every other answer (the first, the third, …) goes to another instance (${b.calc.instanceId}), which forwards it here through the backplane`);
  });

  it('acknowledges a too-late reply as rolled back on whichever instance pops it, and compensates once', async () => {
    const instances = await twoInstances({ timeout: 150 });
    const [a, b] = instances;
    // All owned by a, which sends every other answer to b's reply list.
    const late = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        const response = await fetch(`${a.calc.url}/calc?op=mul&a=${i}&b=7&delay=400`);
        expect(response.status).toBe(504);
        return { i, ...((await response.json()) as { correlationId: string }) };
      }),
    );
    const allLines = (): string[] => [...a.lines, ...b.lines];
    await vi.waitFor(() => {
      for (const { i, correlationId } of late) {
        const compensations = allLines().filter((line) => line === `late reply ${correlationId} acknowledged as rolled back; compensation: discarded result ${i * 7} of mul(${i}, 7)`);
        expect(compensations).toHaveLength(1);
      }
      expect(a.calc.replies.received + b.calc.replies.received).toBe(late.length);
    });
    // The two b popped were rolled back by their owner a, and compensated on b.
    expect(b.calc.replies.crossed).toEqual({ 'rolled-back': 2 });
    expect(a.calc.replies.crossed).toEqual({});
  });

  it('closes every connection and timer it made, and leaves no job behind', async () => {
    const [sockets, timers] = [count('TCPSocketWrap'), count('Timeout')];
    const redisPrefix = `rrxc-test:calc:${randomUUID()}`;
    cleanups.push(() => deleteKeys(admin, `${redisPrefix}:`));
    const instances: Instance[] = [];
    for (let i = 0; i < 2; i++) {
      const lines: string[] = [];
      const calc = await start({ port: 0, redisUrl: redis.url, redisPrefix, timeout: 2_000, maxDelay: 10, log: (line) => lines.push(line) });
      cleanups.push(() => calc.close());
      instances.push({ calc, lines });
    }
    expect(await alternate(instances, 6)).toEqual(expected(6));
    await Promise.all(instances.map(({ calc }) => calc.close()));

    for (const { calc, lines } of instances) expect(lines.at(-1)).toMatch(new RegExp(`^replies received by ${calc.instanceId}: \\d+; `));
    // No job, no reply list, no member of the reply ring.
    expect((await keysUnder(admin, `${redisPrefix}:`)).filter((key) => /:(jobs|replies:.*|reply-ring)$/.test(key))).toEqual([]);
    // fetch's keep-alive sockets close when the server's FIN arrives.
    await vi.waitFor(() => expect(count('TCPSocketWrap')).toBeLessThanOrEqual(sockets));
    // No timer of ours outlives close().
    expect(count('Timeout')).toBeLessThanOrEqual(timers);
  });
});

describe('the calculator example, two instances on Redis and RabbitMQ', () => {
  it("sends every other reply to the other instance's queue, which delivers it through the backplane", async () => {
    const jobsQueue = `rrxc-test-calc-${randomUUID()}`;
    cleanups.push(async () => {
      const connection = await amqp.connect(AMQP_URL);
      await (await connection.createChannel()).deleteQueue(jobsQueue);
      await connection.close();
    });
    const instances = await twoInstances({ amqpUrl: AMQP_URL, jobsQueue, timeout: 5_000, maxDelay: 30 });
    expect(instances[0].calc.transport).toBe('amqp');
    expect(instances[0].calc.mode).toBe('RabbitMQ, a reply queue per instance, Redis backplane');

    const count = 40;
    expect(await alternate(instances, count)).toEqual(expected(count));
    await vi.waitFor(() => expect(crossed(instances, 'delivered')).toBe(count / 2));
  });
});
