// Whether rrxc offers a RabbitMQ Direct Reply-to mode yet. Another change
// is adding it to consumeReplies; until it lands, the suite keeps its slot
// and says why it is empty — it never stands in a wiring of its own.
import * as integrations from '../../../src/integrations/index.js';
import { Controller } from '../../../src/index.js';

/** The pseudo-queue Direct Reply-to consumes from and names as replyTo. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
/** The option the slot expects on consumeReplies. */
export const OPTION = 'directReplyTo';

export type Detection = { readonly offered: true } | { readonly offered: false; readonly reason: string };

/**
 * Asks the library, not its source: consumeReplies rejects an unknown
 * option before it touches the channel, so calling it on a stub channel
 * with `{ directReplyTo: true }` tells whether the option exists. An
 * export named after Direct Reply-to is reported too, for whoever wires
 * the slot to it.
 */
export async function detectDirectReplyTo(): Promise<Detection> {
  const exports = Object.keys(integrations).filter((name) => /direct.?reply/i.test(name));
  const controller = new Controller();
  const stub = {
    consume: async () => ({ consumerTag: 'rrxc-e2e-probe' }),
    cancel: async () => undefined,
    ack: () => undefined,
    nack: () => undefined,
    sendToQueue: () => true,
  };
  try {
    const options: Record<string, unknown> = { [OPTION]: true };
    const consumer = await integrations.consumeReplies(stub, DIRECT_REPLY_TO, controller, options as integrations.ConsumeRepliesOptions<unknown>);
    await consumer.cancel();
    return { offered: true };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const named = exports.length > 0 ? `; exports ${exports.join(', ')} exist, but the slot is wired to the option` : '';
    return { offered: false, reason: `rrxc/integrations has no Direct Reply-to mode yet (consumeReplies: ${message.split(';')[0]}${named})` };
  } finally {
    await controller.close();
  }
}
