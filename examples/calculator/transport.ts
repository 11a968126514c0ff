import type { Controller } from '../../src/index.js';
import { consumeReplies, createReplyHandler, type ReplyDecision } from '../../src/integrations/index.js';
import { describeJob, type Answer, type Job } from './calculator.js';
import { InProcessBroker, type Delivery } from './in-process-queue.js';
import { Worker } from './worker.js';

/** How the service sends jobs to the worker and gets the answers back. */
export interface Transport {
  /** `in-process`, `amqp` or `redis-list`. */
  readonly name: string;
  /** Where this instance consumes the answers: its reply queue or list. */
  readonly replyTo: string;
  /** Publishes a job; its answer will carry `correlationId` and go to `replyTo` (this instance's own by default). */
  publish(job: Job, correlationId: string, replyTo?: string): void;
  /** Stops the worker and the reply consumer, and disconnects. */
  close(): Promise<void>;
}

export interface TransportOptions {
  readonly maxDelay: number;
  readonly log: (line: string) => void;
  /** Told what became of every reply this instance consumed (the service counts replies that crossed instances). */
  readonly onDecision?: (decision: ReplyDecision<Answer>) => void;
}

/**
 * What the reply consumer does with a late answer: the HTTP client already
 * got a 504, so the computed value is thrown away — in a real service this
 * is where a reservation is released or a payment refunded.
 */
export function compensate(log: (line: string) => void) {
  return (answer: Answer, { correlationId }: { correlationId: string }): void => {
    const result = 'value' in answer ? `result ${answer.value}` : `error "${answer.error}"`;
    log(`late reply ${correlationId} acknowledged as rolled back; compensation: discarded ${result} of ${describeJob(answer.job)}`);
  };
}

/** Logs the decisions worth a line (not the everyday `ack`), and passes every one to `onDecision`. */
export function reportDecision({ log, onDecision }: TransportOptions, decision: ReplyDecision<Answer>): void {
  onDecision?.(decision);
  if (decision.action === 'ack' || decision.outcome === 'failed') return;
  log(`reply ${decision.correlationId ?? '(no id)'}: ${decision.outcome} → ${decision.action}`);
}

/** Jobs and replies on queues in this process: needs no server. */
export function createInProcessTransport(controller: Controller<Job, Answer>, options: TransportOptions): Transport {
  const { maxDelay, log } = options;
  const broker = new InProcessBroker();
  const jobs = broker.queue<Job>('jobs');
  const replies = broker.queue<Answer>('replies');
  const worker = new Worker(maxDelay);

  jobs.consume((delivery) => {
    worker.handle(delivery.body, (answer) => {
      if (delivery.replyTo === undefined) return;
      broker.queue<Answer>(delivery.replyTo).send({ body: answer, ...(delivery.correlationId === undefined ? {} : { correlationId: delivery.correlationId }), requeues: 0 });
    });
  });

  // The in-process adapter of the reply handler: its decisions applied to an in-memory queue.
  const handle = createReplyHandler<Answer, Delivery<Answer>>(controller, {
    getCorrelationId: (delivery) => delivery.correlationId,
    getPayload: (delivery) => delivery.body,
    getRequeues: (delivery) => delivery.requeues,
    compensate: compensate(log),
  });
  replies.consume((delivery) => {
    void handle(delivery).then((decision) => {
      reportDecision(options, decision);
      if (decision.action === 'requeue') replies.send({ ...delivery, requeues: decision.requeues + 1 });
      else if (decision.action === 'dead-letter' || decision.action === 'reject') replies.deadLetters.push(delivery);
    });
  });

  return {
    name: 'in-process',
    replyTo: 'replies',
    publish(job, correlationId, replyTo = 'replies') {
      jobs.send({ body: job, correlationId, replyTo, requeues: 0 });
    },
    async close() {
      worker.stop();
      broker.close();
    },
  };
}

export interface AmqpTransportOptions extends TransportOptions {
  readonly url: string;
  /** The jobs queue, shared by every instance. */
  readonly jobsQueue: string;
}

/**
 * Jobs on a RabbitMQ queue shared by every instance, answers on the
 * exclusive reply queue a job names — this instance's own, or, with several
 * instances, another's (see reply-ring.ts): the classic RPC pattern,
 * `correlationId` and `replyTo` on every job. The worker runs in this
 * process too, so one command starts the whole demo.
 */
export async function createAmqpTransport(controller: Controller<Job, Answer>, options: AmqpTransportOptions): Promise<Transport> {
  const { url, jobsQueue, maxDelay, log } = options;
  const { default: amqp } = await import('amqplib');
  // Nagle's algorithm against the broker's delayed ACKs costs ~40 ms per hop on small RPC messages.
  const connection = await amqp.connect(url, { noDelay: true });
  try {
    const channel = await connection.createChannel();
    const workerChannel = await connection.createChannel();
    await channel.assertQueue(jobsQueue, { durable: false });
    const { queue: replyQueue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });

    const worker = new Worker(maxDelay);
    await workerChannel.prefetch(1_000);
    const { consumerTag: workerTag } = await workerChannel.consume(jobsQueue, (message) => {
      if (message === null) return;
      const { correlationId, replyTo } = message.properties as { correlationId?: string; replyTo?: string };
      let job: Job;
      try {
        job = JSON.parse(message.content.toString('utf8')) as Job;
      } catch {
        workerChannel.nack(message, false, false);
        return;
      }
      workerChannel.ack(message);
      worker.handle(job, (answer) => {
        if (replyTo === undefined) return;
        workerChannel.sendToQueue(replyTo, Buffer.from(JSON.stringify(answer)), {
          ...(correlationId === undefined ? {} : { correlationId }),
          contentType: 'application/json',
        });
      });
    });

    const replies = await consumeReplies(channel, replyQueue, controller, {
      compensate: compensate(log),
      onDecision: (decision) => reportDecision(options, decision),
    });

    return {
      name: 'amqp',
      replyTo: replyQueue,
      publish(job, correlationId, replyTo = replyQueue) {
        channel.sendToQueue(jobsQueue, Buffer.from(JSON.stringify(job)), { correlationId, replyTo, contentType: 'application/json' });
      },
      async close() {
        worker.stop();
        await workerChannel.cancel(workerTag);
        await replies.cancel();
        await connection.close();
      },
    };
  } catch (error) {
    await connection.close().catch(() => undefined);
    throw error;
  }
}
