import { Controller } from '../../src/index.js';
import { createReplyHandler } from '../../src/integrations/index.js';
import { RedisTagStore } from '../../src/redis/index.js';

/** A late reply as the compensate-once tests hand it over: only its ID. */
export interface LateReply {
  readonly id: string;
}

/**
 * A consumer of late replies on its own Redis connection, as each instance
 * of test/decisions/compensate-once.test.ts runs it (in the test's process
 * or in test/helpers/compensating-child.ts): a reply handler whose
 * `compensate` records the IDs it compensated.
 */
export async function compensatingConsumer(url: string, prefix: string) {
  const store = await RedisTagStore.connect({ url, prefix });
  const controller = new Controller<unknown, string>({ tagStore: store });
  const compensated: string[] = [];
  const handle = createReplyHandler(controller, {
    getCorrelationId: (m: LateReply) => m.id,
    getPayload: () => 'late',
    getRequeues: () => 0,
    compensate: (_payload, { correlationId }) => void compensated.push(correlationId),
  });
  return {
    compensated,
    handle,
    close: async () => {
      await controller.close();
      await store.close();
    },
  };
}
