// Recipe: transactional rollback look-up — the worker asks isRolledBack() before it commits.
import { Controller } from '../../src/index.js'; // from 'rrxc'

/** A database transaction, as far as the recipe needs one. */
export interface Transaction {
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/**
 * Finishes the work done for `correlationId`: commits only while the
 * requester still waits. If its exchange already ended unanswered, the ID
 * carries the rollback tag and the transaction is rolled back instead —
 * nothing to compensate later. (Across processes, give both sides the
 * same Redis tag store.)
 */
export async function finish(controller: Controller, correlationId: string, tx: Transaction): Promise<'committed' | 'rolled back'> {
  if (await controller.isRolledBack(correlationId)) {
    await tx.rollback();
    return 'rolled back';
  }
  await tx.commit();
  // A small window remains between this commit and the reply: the reply
  // consumer's compensation covers it.
  return 'committed';
}
