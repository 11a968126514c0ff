import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { start, type Calculator } from '../../examples/calculator/service.js';
import { AMQP_URL } from '../helpers/servers.js';

let running: Calculator[] = [];
afterEach(async () => {
  await Promise.all(running.map((c) => c.close()));
  running = [];
});

async function calculator(options: Parameters<typeof start>[0]): Promise<{ calc: Calculator; lines: string[] }> {
  const lines: string[] = [];
  const calc = await start({ port: 0, log: (line) => lines.push(line), ...options });
  running.push(calc);
  return { calc, lines };
}

describe('the calculator example, in-process', () => {
  it('answers a computed result over real HTTP, by GET and by POST', async () => {
    const { calc } = await calculator({ timeout: 2_000, maxDelay: 20 });
    const got = await fetch(`${calc.url}/calc?op=add&a=1&b=2`);
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ job: 'add(1, 2)', result: 3 });
    const posted = await fetch(`${calc.url}/calc`, { method: 'POST', body: JSON.stringify({ op: 'mul', a: 6, b: 7 }) });
    expect(await posted.json()).toMatchObject({ result: 42 });
  });

  it('answers ordinary requests in time with its default timeout and worker delay', async () => {
    const { calc, lines } = await calculator({});
    const statuses = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const response = await fetch(`${calc.url}/calc?op=add&a=${i}&b=1`);
        await response.body?.cancel();
        return response.status;
      }),
    );
    expect(statuses).toEqual(Array.from({ length: 40 }, () => 200));
    expect(lines.filter((line) => line.includes('will time out'))).toEqual([]);
  });

  it('says at start-up when its worker delay reaches the timeout', async () => {
    const { lines } = await calculator({ timeout: 500, maxDelay: 800 });
    expect(lines).toContain('worker delays go up to 800 ms, the timeout is 500 ms: some ordinary requests will time out');
  });

  it('answers 504 when the worker is too late, then acknowledges the late reply as rolled back and compensates', async () => {
    const { calc, lines } = await calculator({ timeout: 100 });
    const response = await fetch(`${calc.url}/calc?op=sub&a=5&b=3&delay=300`);
    expect(response.status).toBe(504);
    const { correlationId } = (await response.json()) as { correlationId: string };
    await vi.waitFor(() => expect(lines).toContain(`late reply ${correlationId} acknowledged as rolled back; compensation: discarded result 2 of sub(5, 3)`));
  });

  it('answers 400 for a bad job and 422 for one without a result', async () => {
    const { calc } = await calculator({ maxDelay: 0 });
    expect((await fetch(`${calc.url}/calc?op=pow&a=1&b=2`)).status).toBe(400);
    expect((await fetch(`${calc.url}/calc?op=add&a=x&b=2`)).status).toBe(400);
    expect((await fetch(`${calc.url}/calc?op=div&a=1&b=0`)).status).toBe(422);
  });

  it('answers waiting requests 503 when it shuts down, and leaves no open exchange', async () => {
    const { calc } = await calculator({ timeout: 5_000 });
    const waiting = fetch(`${calc.url}/calc?op=add&a=1&b=1&delay=4000`);
    await vi.waitFor(() => expect(calc.controller.openExchanges).toBe(1));
    await calc.close();
    expect((await waiting).status).toBe(503);
    expect(calc.controller.openExchanges).toBe(0);
  });
});

describe('the calculator example, on RabbitMQ', () => {
  it('answers through the broker with correlationId and replyTo', async () => {
    const jobsQueue = `rrxc-test-calc-${randomUUID()}`;
    const { calc } = await calculator({ amqpUrl: AMQP_URL, jobsQueue, timeout: 2_000, maxDelay: 10 });
    expect(calc.transport).toBe('amqp');
    const response = await fetch(`${calc.url}/calc?op=add&a=40&b=2`);
    expect(await response.json()).toMatchObject({ result: 42 });
    await calc.close();
    const connection = await amqp.connect(AMQP_URL);
    await (await connection.createChannel()).deleteQueue(jobsQueue);
    await connection.close();
  });
});
