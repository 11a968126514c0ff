// The RabbitMQ variants: the tutorial's hand-rolled RPC client on amqplib,
// rabbitmq-client's RPCClient, rrxc as its docs wire it (consumeReplies
// with acknowledge: 'batched' on a channel of its own + controller.request),
// the same with the default acknowledge: 'each', rrxc with registerResponse
// in a consumer of one's own, and rrxc's Direct Reply-to mode
// (acknowledge: 'none' on amq.rabbitmq.reply-to). Each has a connection of
// its own; all send to the one jobs queue the echo worker consumes.
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { Connection as RabbitConnection } from 'rabbitmq-client';
import { Controller } from '../../../src/index.js';
import { consumeReplies, type ConsumeRepliesOptions } from '../../../src/integrations/index.js';
import { TIMEOUT_MS, URLS, type Echo } from '../config.js';
import type { BrokerSetup, Skipped, Variant, VariantInfo } from '../variant.js';
import { DIRECT_REPLY_TO, DIRECT_REPLY_TO_OPTIONS, detectDirectReplyTo } from './direct-reply-to.js';
import { Pending } from './hand-rolled.js';

/** The name of the run's jobs queue, which the echo worker declares. */
export const jobsQueue = (runId: string): string => `${runId}.jobs`;

const encode = (message: Echo): Buffer => Buffer.from(JSON.stringify(message));
const decode = (content: Buffer): Echo => JSON.parse(content.toString('utf8')) as Echo;

/** An amqplib connection as the project recommends for RPC: Nagle off (docs/benchmarks.md, "End to end: the calculator example"). */
const connectAmqp = (): Promise<amqp.ChannelModel> => amqp.connect(URLS.rabbitmq, { noDelay: true });

const INFO = {
  handRolled: {
    broker: 'rabbitmq',
    name: 'hand-rolled amqplib',
    role: 'hand-rolled',
    wiring: 'amqplib, the RabbitMQ tutorial RPC client: exclusive reply queue consumed with noAck: true, Map of correlationId (randomUUID) → {resolve, timer}, setTimeout per request',
  },
  rabbitmqClient: {
    broker: 'rabbitmq',
    name: 'rabbitmq-client RPC',
    role: 'peer',
    wiring: 'rabbitmq-client 5, `rabbit.createRPCClient({ confirm: true })` as its README shows, `rpc.send(queue, body)` (Direct Reply-to, publisher confirms); `noDelay: true` like the others',
  },
  rrxc: {
    broker: 'rabbitmq',
    name: 'rrxc consumeReplies',
    role: 'rrxc',
    wiring: "rrxc as docs/recipes.md wires it: `consumeReplies(ownChannel, replyQueue, controller, { acknowledge: 'batched' })` on a channel of the consumer's own (one ack(allUpTo) frame per event-loop turn), `controller.request(message, send)` publishing on another channel, exclusive reply queue",
  },
  rrxcAckEach: {
    broker: 'rabbitmq',
    name: 'rrxc consumeReplies, ack each',
    role: 'rrxc-ack-each',
    wiring: "`consumeReplies(channel, replyQueue, controller)` with the default `acknowledge: 'each'` (one ack frame per reply) on the channel the requests are published on, `controller.request(message, send)`, exclusive reply queue",
  },
  byHand: {
    broker: 'rabbitmq',
    name: 'rrxc registerResponse',
    role: 'rrxc-by-hand',
    wiring: "rrxc with the tutorial's consumer (noAck: true) calling `controller.registerResponse()`, `controller.request(message, send)`: the hand-rolled client with its Map swapped for rrxc",
  },
  directReplyTo: {
    broker: 'rabbitmq',
    name: 'rrxc Direct Reply-to',
    role: 'rrxc-direct-reply-to',
    wiring: `rrxc's Direct Reply-to mode: \`consumeReplies(channel, '${DIRECT_REPLY_TO}', controller, { acknowledge: 'none' })\` (noAck), \`controller.request(message, send)\` publishing on the same channel with replyTo '${DIRECT_REPLY_TO}'`,
  },
} as const satisfies Record<string, VariantInfo>;

async function handRolled(jobs: string): Promise<Variant> {
  const connection = await connectAmqp();
  const channel = await connection.createChannel();
  const { queue: replyTo } = await channel.assertQueue('', { exclusive: true });
  const pending = new Pending<Echo>();
  const { consumerTag } = await channel.consume(
    replyTo,
    (message) => {
      if (message !== null) pending.settle(message.properties.correlationId, decode(message.content));
    },
    { noAck: true },
  );
  return {
    ...INFO.handRolled,
    call(message) {
      const correlationId = randomUUID();
      const reply = pending.wait(correlationId);
      channel.sendToQueue(jobs, encode(message), { correlationId, replyTo });
      return reply;
    },
    async close() {
      await channel.cancel(consumerTag);
      pending.rejectAll(new Error('closed'));
      await connection.close();
    },
  };
}

async function rabbitmqClient(jobs: string): Promise<Variant> {
  const rabbit = new RabbitConnection({ url: URLS.rabbitmq, noDelay: true });
  await rabbit.onConnect(10_000);
  const rpc = rabbit.createRPCClient({ confirm: true, timeout: TIMEOUT_MS });
  return {
    ...INFO.rabbitmqClient,
    async call(message) {
      // A plain object is sent as JSON, and a reply whose contentType says JSON comes back decoded.
      return (await rpc.send(jobs, message)).body as Echo;
    },
    async close() {
      await rpc.close();
      await rabbit.close();
    },
  };
}

/**
 * rrxc on an exclusive reply queue (or `replyQueue`); `consumer` starts
 * whichever reply consumer the variant is about, on the publishing channel
 * or, with `ownReplyChannel`, on a channel of its own.
 */
async function rrxcVariant(
  info: VariantInfo,
  jobs: string,
  consumer: (channel: amqp.Channel, replyTo: string, controller: Controller<Echo, Echo>) => Promise<{ cancel(): Promise<unknown> }>,
  { replyQueue, ownReplyChannel = false }: { replyQueue?: string; ownReplyChannel?: boolean } = {},
): Promise<Variant> {
  const connection = await connectAmqp();
  const channel = await connection.createChannel();
  const replyTo = replyQueue ?? (await channel.assertQueue('', { exclusive: true })).queue;
  const controller = new Controller<Echo, Echo>({ timeout: TIMEOUT_MS });
  const replies = await consumer(ownReplyChannel ? await connection.createChannel() : channel, replyTo, controller);
  const send = (correlationId: string, message: Echo): void => void channel.sendToQueue(jobs, encode(message), { correlationId, replyTo });
  return {
    ...info,
    call: (message) => controller.request(message, send),
    async close() {
      await replies.cancel();
      await controller.close();
      await connection.close();
    },
  };
}

function byHandConsumer(channel: amqp.Channel, replyTo: string, controller: Controller<Echo, Echo>): Promise<{ cancel(): Promise<unknown> }> {
  return channel
    .consume(
      replyTo,
      (message) => {
        if (message === null) return;
        // Every outcome but `delivered` would be a bug here; the suite checks each reply's seq instead.
        void controller.registerResponse({ correlationId: message.properties.correlationId as string, message: decode(message.content) });
      },
      { noAck: true },
    )
    .then(({ consumerTag }) => ({ cancel: () => channel.cancel(consumerTag) }));
}

export async function setupRabbitmq(runId: string): Promise<BrokerSetup> {
  const jobs = jobsQueue(runId);
  const admin = await connectAmqp();
  const server = `RabbitMQ ${String(admin.connection.serverProperties.version)}`;
  const variants: Variant[] = [
    await handRolled(jobs),
    await rabbitmqClient(jobs),
    await rrxcVariant(INFO.rrxc, jobs, (channel, replyTo, controller) => consumeReplies(channel, replyTo, controller, { acknowledge: 'batched' }), {
      ownReplyChannel: true,
    }),
    await rrxcVariant(INFO.rrxcAckEach, jobs, (channel, replyTo, controller) => consumeReplies(channel, replyTo, controller)),
    await rrxcVariant(INFO.byHand, jobs, byHandConsumer),
  ];
  const skipped: Skipped[] = [];
  const direct = await detectDirectReplyTo();
  if (direct.offered) {
    // Typed loosely so that the suite still compiles against an rrxc without the option (then it is skipped above).
    const options: Record<string, unknown> = { ...DIRECT_REPLY_TO_OPTIONS };
    // The consumer must be on the channel the requests are published on: the broker routes a reply to the channel that sent the request.
    variants.push(
      await rrxcVariant(INFO.directReplyTo, jobs, (channel, _, controller) => consumeReplies(channel, DIRECT_REPLY_TO, controller, options as ConsumeRepliesOptions<Echo>), {
        replyQueue: DIRECT_REPLY_TO,
      }),
    );
  } else {
    skipped.push({ ...INFO.directReplyTo, reason: direct.reason });
  }
  return {
    broker: 'rabbitmq',
    server,
    variants,
    skipped,
    async cleanup() {
      // The echo worker deletes the jobs queue when it stops; this catches a worker that could not.
      const channel = await admin.createChannel();
      await channel.deleteQueue(jobs);
      await admin.close();
    },
  };
}
