// Recipe: a Kafka-style batch consumer that commits its offset only once every reply of the batch is in.
import { Controller } from '../../src/index.js'; // from 'rrxc'

type Order = { offset: number; sku: string };
type Reservation = { sku: string; reserved: boolean };

/** What the consumer needs from its client (kafkajs: eachBatch + commitOffsetsIfNecessary). */
export interface Partition {
  commit(offset: number): Promise<void>;
}

/**
 * Handles one batch: asks the stock service about every order (its answers
 * come back on another topic), and commits past the batch only when all
 * answers arrived. Otherwise nothing is committed, the batch is consumed
 * again, and the IDs of the lost answers are tagged for rollback.
 */
export async function handleBatch(
  controller: Controller<Order, Reservation>,
  partition: Partition,
  batch: readonly Order[],
  askStock: (order: Order, correlationId: string) => void,
): Promise<boolean> {
  const result = await controller.synchronize({ timeout: 1_000 }, (xc) => {
    for (const order of batch) {
      const { correlationId } = xc.registerRequest({ message: order, correlationId: `order-${order.offset}` });
      askStock(order, correlationId);
    }
  });
  if (!result.complete) return false;
  await partition.commit(batch[batch.length - 1]!.offset + 1);
  return true;
}

/** The reply topic's consumer: one registerResponse per answer, wherever it runs. */
export async function onStockReply(controller: Controller<Order, Reservation>, key: string, value: Reservation): Promise<void> {
  const outcome = await controller.registerResponse({ correlationId: key, message: value });
  if (outcome === 'rolled-back') console.log(`stock answer ${key} came after its batch gave up: release ${value.sku}`);
}
