import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Controller } from '../../src/index.js';
import { handleBatch, onStockReply, type Partition } from '../../examples/recipes/kafka-style-consumer.js';
import { rabbitmqRpc } from '../../examples/recipes/rabbitmq-rpc.js';
import { finish } from '../../examples/recipes/rollback-lookup.js';
import { webhookCallback } from '../../examples/recipes/webhook-callback.js';
import { AMQP_URL, listen } from '../helpers/servers.js';

const RECIPES = ['rabbitmq-rpc.ts', 'webhook-callback.ts', 'kafka-style-consumer.ts', 'rollback-lookup.ts'];

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

  it('rollback look-up: commits while the requester waits, rolls back once it gave up', async () => {
    const controller = new Controller({ timeout: 50 });
    cleanups.push(() => controller.close());
    const tx = () => ({ commit: vi.fn(async () => {}), rollback: vi.fn(async () => {}) });

    const waiting = controller.createExchange();
    const { correlationId: live } = waiting.registerRequest();
    const first = tx();
    await expect(finish(controller, live, first)).resolves.toBe('committed');
    expect(first.commit).toHaveBeenCalledOnce();

    const { correlationId: abandoned } = waiting.registerRequest();
    await waiting.wait(); // times out: both IDs unanswered, tagged for rollback
    const second = tx();
    await expect(finish(controller, abandoned, second)).resolves.toBe('rolled back');
    expect(second.rollback).toHaveBeenCalledOnce();
    expect(second.commit).not.toHaveBeenCalled();
  });
});
