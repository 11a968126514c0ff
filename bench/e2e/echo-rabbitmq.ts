// Echo worker for the RabbitMQ variants (a child process of the runner):
// consumes the run's jobs queue and sends each body back, unchanged, to the
// message's replyTo with its correlationId — a plain queue, an exclusive
// reply queue and Direct Reply-to (`amq.rabbitmq.reply-to.…`) alike.
import amqp from 'amqplib';
import { URLS } from './config.js';
import { echoEnv, serveUntilStopped } from './echo-lifecycle.js';

const queue = echoEnv('RRXC_E2E_QUEUE');
// Nagle's algorithm against the broker's delayed ACKs costs ~40 ms a hop on small messages (docs/benchmarks.md).
const connection = await amqp.connect(URLS.rabbitmq, { noDelay: true });
const channel = await connection.createChannel();
await channel.assertQueue(queue, { durable: false });
// noAck: the worker is not what is measured; acknowledging each job would only add broker work to every variant alike.
await channel.consume(
  queue,
  (message) => {
    if (message === null) return;
    const { replyTo, correlationId } = message.properties as { replyTo?: string; correlationId?: string };
    if (replyTo === undefined) return;
    // contentType: rabbitmq-client decodes a JSON reply only when it says so.
    channel.sendToQueue(replyTo, message.content, { ...(correlationId === undefined ? {} : { correlationId }), contentType: 'application/json' });
  },
  { noAck: true },
);

serveUntilStopped(async () => {
  await channel.deleteQueue(queue);
  await connection.close();
});
