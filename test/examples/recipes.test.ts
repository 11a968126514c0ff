import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Controller, type ResponseOutcome } from '../../src/index.js';
import { PostgresTagStore } from '../../src/postgres/index.js';
import { handleBatch, onStockReply, type Partition } from '../../examples/recipes/kafka-style-consumer.js';
import { rabbitmqRpc } from '../../examples/recipes/rabbitmq-rpc.js';
import { orderHandler, placeOrder, type Order, type Placed } from '../../examples/recipes/rollback-lookup.js';
import { webhookCallback } from '../../examples/recipes/webhook-callback.js';
import { postgresForFile } from '../helpers/postgres-for-file.js';
import { AMQP_URL, listen } from '../helpers/servers.js';

const RECIPES = ['rabbitmq-rpc.ts', 'webhook-callback.ts', 'kafka-style-consumer.ts', 'rollback-lookup.ts'];

const db = postgresForFile('recipes');

let cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

describe('docs/recipes.md', () => {
  it.each(RECIPES)('quotes examples/recipes/%s verbatim', async (file) => {
    const [docs, code] = await Promise.all([readFile('docs/recipes.md', 'utf8'), readFile(`examples/recipes/${file}`, 'utf8')]);
    expect(docs).toContain(`\`\`\`ts\n${code}\`\`\``);
  });
});

describe('recipes', () => {
  it('RabbitMQ RPC: the caller gets the worker reply', async () => {
    await expect(rabbitmqRpc(AMQP_URL, `rrxc-test-recipe-${randomUUID()}`, 'hello')).resolves.toEqual({ upper: 'HELLO' });
  });

  it('webhook callback: the handler answers with the partner callback, which got 202', async () => {
    const answered: number[] = [];
    const partner = await listen((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk));
      req.on('end', () => {
        const { amount, callbackUrl } = JSON.parse(body) as { amount: number; callbackUrl: string };
        res.writeHead(202).end();
        setTimeout(async () => {
          const callback = await fetch(callbackUrl, { method: 'POST', body: JSON.stringify({ status: 'paid', amount }) });
          answered.push(callback.status);
        }, 20);
      });
    });
    cleanups.push(() => partner.close());
    await expect(webhookCallback(partner.url, 99)).resolves.toEqual({ status: 200, body: { status: 'paid', amount: 99 } });
    await vi.waitFor(() => expect(answered).toEqual([202]));
  });

  it('Kafka-style consumer: commits past the batch only when every reply came', async () => {
    const controller = new Controller<{ offset: number; sku: string }, { sku: string; reserved: boolean }>();
    cleanups.push(() => controller.close());
    const commits: number[] = [];
    const partition: Partition = { commit: async (offset) => void commits.push(offset) };
    const batch = [
      { offset: 10, sku: 'a' },
      { offset: 11, sku: 'b' },
    ];
    const answerAll = (order: { sku: string }, id: string): void => void setTimeout(() => void onStockReply(controller, id, { sku: order.sku, reserved: true }), 5);
    await expect(handleBatch(controller, partition, batch, answerAll)).resolves.toBe(true);
    expect(commits).toEqual([12]);

    const next = [{ offset: 12, sku: 'c' }, { offset: 13, sku: 'lost' }];
    const loseOne = (order: { sku: string }, id: string): void => {
      if (order.sku !== 'lost') answerAll(order, id);
    };
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const handled = handleBatch(controller, partition, next, loseOne);
      await vi.advanceTimersByTimeAsync(1_000);
      await expect(handled).resolves.toBe(false);
    } finally {
      vi.useRealTimers();
    }
    expect(commits).toEqual([12]);
    expect(await controller.isRolledBack('order-13')).toBe(true);
    expect(await controller.isRolledBack('order-12')).toBe(false);
  });

  it('transactional rollback look-up: 201 in time; 202 when the worker committed before the exchange ended; 504, and no order, when it did not', async () => {
    // The recipe's unqualified `orders` and tag table live in this file's schema.
    const pool = new pg.Pool({ connectionString: db.url, options: `-c search_path=${db.schema}` });
    cleanups.push(() => pool.end());
    await pool.query('CREATE TABLE orders (id bigserial PRIMARY KEY, sku text NOT NULL, quantity int NOT NULL)');
    // An order of "slow-commit" takes 300 ms to COMMIT (a deferred trigger runs then): after its claim, past the exchange's end.
    await pool.query(`CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$`);
    await pool.query(
      `CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON orders DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.sku = 'slow-commit') EXECUTE FUNCTION slow_commit()`,
    );
    const store = new PostgresTagStore({ pool });
    cleanups.push(() => store.close());
    await store.setup();
    const controller = new Controller<Order, Placed>({ tagStore: store, timeout: 150 });
    cleanups.push(() => controller.close());

    // The worker, behind an in-process queue: it starts 5 ms after the publish ("late": 300 ms) and replies when it placed the order.
    const workers: Promise<void>[] = [];
    const outcomes: Record<string, ResponseOutcome> = {};
    const publish = (order: Order, correlationId: string): void => {
      const started = new Promise((resolve) => setTimeout(resolve, order.sku === 'late' ? 300 : 5));
      workers.push(started.then(async () => {
        const placed = await placeOrder(pool, store, correlationId, order);
        if (placed !== undefined) outcomes[order.sku] = await controller.registerResponse({ correlationId, message: placed });
      }));
    };
    const server = await listen(orderHandler(controller, publish));
    cleanups.push(() => server.close());
    const post = async (sku: string): Promise<{ status: number; body: unknown }> => {
      const response = await fetch(`${server.url}/orders`, { method: 'POST', body: JSON.stringify({ sku, quantity: 1 }) });
      return { status: response.status, body: await response.json() };
    };

    await expect(post('fast')).resolves.toEqual({ status: 201, body: { orderId: expect.any(String) } });
    await expect(post('slow-commit')).resolves.toEqual({ status: 202, body: { status: 'accepted, finishing', correlationId: expect.any(String) } });
    await expect(post('late')).resolves.toEqual({ status: 504, body: { status: 'rolled back: nothing was ordered' } });
    await Promise.all(workers);
    // The late worker lost its claim and rolled back; the slow one's late reply is acknowledged, nothing to compensate.
    expect((await pool.query('SELECT sku FROM orders ORDER BY id')).rows).toEqual([{ sku: 'fast' }, { sku: 'slow-commit' }]);
    expect(outcomes).toEqual({ fast: 'delivered', 'slow-commit': 'committed' });
  });
});
