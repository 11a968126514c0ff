/**
 * A reply consumer in its own process, for test/decisions/compensate-once.test.ts:
 * `node --import tsx test/helpers/compensating-child.ts`. Env: REDIS_URL,
 * RRXC_PREFIX. On `{ ids, at }` over IPC it handles one late reply for each
 * ID, all at once at wall-clock time `at` (so that the parent starts at the
 * same moment), in the order given, eight at a time (a consumer's prefetch),
 * and answers the IDs it compensated.
 */
import { Controller } from '../../src/index.js';
import { createReplyHandler } from '../../src/integrations/index.js';
import { RedisTagStore } from '../../src/redis/index.js';
import { inFlight } from './in-flight.js';

const store = await RedisTagStore.connect({ url: process.env['REDIS_URL']!, prefix: process.env['RRXC_PREFIX']! });
const controller = new Controller<unknown, string>({ tagStore: store });
const compensated: string[] = [];
const handle = createReplyHandler(controller, {
  getCorrelationId: (m: { id: string }) => m.id,
  getPayload: () => 'late',
  getRequeues: () => 0,
  compensate: (_payload, { correlationId }) => void compensated.push(correlationId),
});

process.on('message', async (command: { ids: string[]; at: number }) => {
  await new Promise((resolve) => setTimeout(resolve, command.at - Date.now()));
  void inFlight(8, command.ids, (id) => handle({ id })).then(async (decisions) => {
    process.send!({ compensated, actions: decisions.map((d) => d.action) });
    await controller.close();
    await store.close();
    process.disconnect();
  });
});
process.send!({ ready: true });
