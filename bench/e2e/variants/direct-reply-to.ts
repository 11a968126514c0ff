// Whether rrxc offers RabbitMQ Direct Reply-to: consumeReplies with
// `acknowledge: 'none'` on the pseudo-queue `amq.rabbitmq.reply-to`. The
// suite asks the library, not its source, and keeps the slot (saying why
// it is empty) for an rrxc that does not have it yet — it never stands in
// a wiring of its own.
import * as integrations from '../../../src/integrations/index.js';
import { Controller } from '../../../src/index.js';

/** The pseudo-queue Direct Reply-to consumes from and names as replyTo. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
/** The consumeReplies options that make it a Direct Reply-to consumer. */
export const DIRECT_REPLY_TO_OPTIONS = { acknowledge: 'none' } as const;

export type Detection = { readonly offered: true } | { readonly offered: false; readonly reason: string };

/**
 * consumeReplies rejects an unknown option (or value) before it touches
 * the channel, and refuses `amq.rabbitmq.reply-to` unless acknowledgements
 * are off: calling it on a stub channel with `{ acknowledge: 'none' }`
 * tells whether the mode exists.
 */
export async function detectDirectReplyTo(): Promise<Detection> {
  const controller = new Controller();
  const stub = {
    consume: async () => ({ consumerTag: 'rrxc-e2e-probe' }),
    cancel: async () => undefined,
    ack: () => undefined,
    nack: () => undefined,
    sendToQueue: () => true,
  };
  try {
    const options: Record<string, unknown> = { ...DIRECT_REPLY_TO_OPTIONS };
    const consumer = await integrations.consumeReplies(stub, DIRECT_REPLY_TO, controller, options as integrations.ConsumeRepliesOptions<unknown>);
    await consumer.cancel();
    return { offered: true };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { offered: false, reason: `rrxc/integrations has no Direct Reply-to mode yet (consumeReplies: ${message.split(';')[0]})` };
  } finally {
    await controller.close();
  }
}
