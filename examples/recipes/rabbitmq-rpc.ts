// Recipe: RPC over RabbitMQ — publish with correlationId + replyTo, route replies with consumeReplies.
import amqp from 'amqplib';
import { Controller } from '../../src/index.js'; // from 'rrxc'
import { consumeReplies } from '../../src/integrations/index.js'; // from 'rrxc/integrations'

type Question = { text: string };
type Reply = { upper: string };

export async function rabbitmqRpc(url: string, jobs: string, text: string): Promise<Reply | 'timed out'> {
  const connection = await amqp.connect(url, { noDelay: true }); // no Nagle delay on small RPC messages
  const controller = new Controller<Question, Reply>({ timeout: 2_000 });
  try {
    const channel = await connection.createChannel();
    await channel.assertQueue(jobs, { durable: false, autoDelete: true });
    // Each instance has its own reply queue; the broker deletes it with the connection.
    const { queue: replyTo } = await channel.assertQueue('', { exclusive: true });

    // The worker (usually another service): answers on replyTo, echoing the correlationId.
    await channel.consume(jobs, (msg) => {
      if (msg === null) return;
      const { text } = JSON.parse(msg.content.toString()) as Question;
      channel.sendToQueue(msg.properties.replyTo, Buffer.from(JSON.stringify({ upper: text.toUpperCase() })), {
        correlationId: msg.properties.correlationId,
      });
      channel.ack(msg);
    });

    // The reply consumer: ack / requeue (bounded) / dead-letter, compensation for late replies.
    // On a channel of its own, so that a turn's acks go in one frame (acknowledge: 'batched').
    const replies = await consumeReplies(await connection.createChannel(), replyTo, controller, {
      acknowledge: 'batched',
      compensate: (reply, { correlationId }) => console.log(`too late, undo ${correlationId}`, reply),
    });

    // The caller, e.g. inside an HTTP handler.
    const result = await controller.synchronize({}, (xc) => {
      const question: Question = { text };
      const { correlationId } = xc.registerRequest({ message: question });
      channel.sendToQueue(jobs, Buffer.from(JSON.stringify(question)), { correlationId, replyTo });
    });

    await replies.cancel();
    return result.status === 'completed' ? result.entries[0]!.response! : 'timed out';
  } finally {
    await controller.close();
    await connection.close();
  }
}
