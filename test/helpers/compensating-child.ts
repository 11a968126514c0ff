/**
 * A reply consumer in its own process, for test/decisions/compensate-once.test.ts:
 * `node --import tsx test/helpers/compensating-child.ts`. Env: REDIS_URL,
 * RRXC_PREFIX. On `{ ids, at }` over IPC it handles one late reply for each
 * ID, all at once at wall-clock time `at` (so that the parent starts at the
 * same moment), in the order given, eight at a time (a consumer's prefetch),
 * and answers the IDs it compensated.
 */
import { compensatingConsumer } from './compensating-consumer.js';
import { inFlight } from './in-flight.js';

const { compensated, handle, close } = await compensatingConsumer(process.env['REDIS_URL']!, process.env['RRXC_PREFIX']!);

process.on('message', async (command: { ids: string[]; at: number }) => {
  await new Promise((resolve) => setTimeout(resolve, command.at - Date.now()));
  void inFlight(8, command.ids, (id) => handle({ id })).then(async (decisions) => {
    process.send!({ compensated, actions: decisions.map((d) => d.action) });
    await close();
    process.disconnect();
  });
});
process.send!({ ready: true });
