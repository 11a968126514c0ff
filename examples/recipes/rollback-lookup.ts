// Recipe: transactional rollback look-up — the worker claims the ID in its own PostgreSQL transaction; exactly one side wins.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type pg from 'pg';
import { claimCommitted, type Controller } from '../../src/index.js'; // from 'rrxc'
import type { PostgresTagStore } from '../../src/postgres/index.js'; // from 'rrxc/postgres'

export type Order = { sku: string; quantity: number };
export type Placed = { orderId: string };

/**
 * The worker: writes the order and claims the request's correlation ID in
 * one transaction. It commits only when it won the claim; otherwise the
 * requester's exchange already ended (the ID is rolled back) and nothing is
 * written — there is nothing to compensate, ever.
 */
export async function placeOrder(pool: pg.Pool, store: PostgresTagStore, correlationId: string, order: Order): Promise<Placed | undefined> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ id: string }>('INSERT INTO orders (sku, quantity) VALUES ($1, $2) RETURNING id', [order.sku, order.quantity]);
    // Until COMMIT, the requester's end of exchange waits for this transaction, then sees what it did.
    if ((await claimCommitted(store.within(client), correlationId)) !== 'won') {
      await client.query('ROLLBACK'); // 'rolled-back': the requester gave up first ('committed': an earlier attempt did it)
      return undefined;
    }
    await client.query('COMMIT');
    return { orderId: rows[0]!.id };
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

/**
 * The requester: POST /orders hands the order to a worker and answers 201
 * with its reply; when the reply is late, 202 if the worker committed the
 * order before the exchange ended, 504 if not (and then it never will).
 * The controller's tag store is the same PostgresTagStore.
 */
export function orderHandler(controller: Controller<Order, Placed>, publish: (order: Order, correlationId: string) => void) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const order = JSON.parse(text) as Order;
    const result = await controller.synchronize({}, (xc) => {
      const { correlationId } = xc.registerRequest({ message: order });
      publish(order, correlationId);
    });
    const { correlationId: id, response } = result.entries[0]!;
    let answer: [number, unknown] = [504, { status: 'rolled back: nothing was ordered' }];
    if (response !== undefined) answer = [201, response];
    else if (result.committed.includes(id)) answer = [202, { status: 'accepted, finishing', correlationId: id }];
    else if (result.undecided.includes(id)) answer = [503, { status: 'outcome unknown: ask again', correlationId: id }];
    res.writeHead(answer[0], { 'content-type': 'application/json' }).end(JSON.stringify(answer[1]));
  };
}
