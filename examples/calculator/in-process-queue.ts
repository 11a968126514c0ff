/**
 * A queue in the memory of one process, with the delivery semantics of a
 * broker as far as the example needs them: asynchronous delivery, one
 * consumer, explicit acknowledgement. Stands in for RabbitMQ when the example
 * runs without servers.
 */

/** One message on an in-process queue. */
export interface Delivery<T> {
  readonly body: T;
  readonly correlationId?: string;
  /** Name of the queue the answer goes to. */
  readonly replyTo?: string;
  /** How often the message was put back; the reply handler's bound reads it. */
  readonly requeues: number;
}

/** Messages by queue name; each queue has at most one consumer. */
export class InProcessBroker {
  readonly #queues = new Map<string, InProcessQueue<unknown>>();

  /** The queue named `name`, made on first use. */
  queue<T>(name: string): InProcessQueue<T> {
    let queue = this.#queues.get(name);
    if (queue === undefined) this.#queues.set(name, (queue = new InProcessQueue<unknown>()));
    return queue as InProcessQueue<T>;
  }

  /** Drops every queue and its consumer. */
  close(): void {
    for (const queue of this.#queues.values()) queue.cancel();
    this.#queues.clear();
  }
}

export class InProcessQueue<T> {
  #consumer: ((delivery: Delivery<T>) => void) | undefined;
  readonly #backlog: Delivery<T>[] = [];
  #scheduled = false;
  /** Messages dead-lettered or rejected, for inspection. */
  readonly deadLetters: Delivery<T>[] = [];

  send(delivery: Delivery<T>): void {
    this.#backlog.push(delivery);
    this.#schedule();
  }

  /** Starts the consumer; a second call replaces the first. */
  consume(consumer: (delivery: Delivery<T>) => void): void {
    this.#consumer = consumer;
    this.#schedule();
  }

  /** Stops the consumer and drops what was not delivered. */
  cancel(): void {
    this.#consumer = undefined;
    this.#backlog.length = 0;
  }

  get size(): number {
    return this.#backlog.length;
  }

  #schedule(): void {
    if (this.#scheduled || this.#consumer === undefined || this.#backlog.length === 0) return;
    this.#scheduled = true;
    // Delivered on a later turn, like a broker would: publishing never runs the consumer inline.
    setImmediate(() => {
      this.#scheduled = false;
      for (let delivery = this.#backlog.shift(); delivery !== undefined; delivery = this.#backlog.shift()) {
        if (this.#consumer === undefined) return;
        this.#consumer(delivery);
      }
    });
  }
}
