import type { AmqpChannelLike, AmqpMessage } from './queue-consumer.js';

/** What a decision does to its message on the channel, once its turn in delivery order comes: `release` gives it back to the broker for redelivery. */
export type Settlement = 'ack' | 'nack' | 'release';

/**
 * Acknowledges a consumer's messages in delivery order, a turn's worth at a
 * time: a run of decided `ack`s costs one `ack(last, allUpTo)` frame, not
 * one frame each; a `nack` (or a release) ends the run and is sent on its own. A message
 * waits for every one delivered before it, so `allUpTo` never acknowledges
 * a message whose decision is still being made (a slow compensation holds
 * back the acknowledgements behind it, not their routing).
 *
 * `allUpTo` covers every delivery on the channel, so the channel must be the
 * consumer's own.
 * @internal
 */
export class BatchedAcknowledgements {
  readonly #channel: AmqpChannelLike;
  /** Messages in delivery order from `#head` on; decided ones have a settlement. */
  #order: AmqpMessage[] = [];
  #head = 0;
  readonly #settlements = new Map<AmqpMessage, Settlement>();
  #flushing: Promise<void> | undefined;
  readonly #onError: (error: unknown, message: AmqpMessage) => void;

  /**
   * @param channel - The consumer's own channel.
   * @param onError - Told when the channel refuses an acknowledgement.
   */
  constructor(channel: AmqpChannelLike, onError: (error: unknown, message: AmqpMessage) => void) {
    this.#channel = channel;
    this.#onError = onError;
  }

  /** A message was delivered: it takes its place in line. */
  delivered(message: AmqpMessage): void {
    this.#order.push(message);
  }

  /** A message was decided; its acknowledgement goes with the turn's others. */
  decided(message: AmqpMessage, settlement: Settlement): void {
    this.#settlements.set(message, settlement);
    this.#flushing ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.#flushing = undefined;
        this.#flush();
        resolve();
      }),
    );
  }

  /** Resolves once every decided message is acknowledged. */
  async drain(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
  }

  #flush(): void {
    const order = this.#order;
    let run: AmqpMessage | undefined;
    while (this.#head < order.length) {
      const message = order[this.#head]!;
      const settlement = this.#settlements.get(message);
      if (settlement === undefined) break;
      this.#settlements.delete(message);
      this.#head++;
      if (settlement === 'ack') {
        run = message;
        continue;
      }
      if (run !== undefined) this.#send(run, 'ack');
      run = undefined;
      this.#send(message, settlement);
    }
    if (run !== undefined) this.#send(run, 'ack');
    if (this.#head === order.length) {
      this.#order = [];
      this.#head = 0;
    } else if (this.#head > 1_024 && 2 * this.#head > order.length) {
      this.#order = order.slice(this.#head);
      this.#head = 0;
    }
  }

  #send(message: AmqpMessage, settlement: Settlement): void {
    try {
      if (settlement === 'ack') this.#channel.ack(message, true);
      else this.#channel.nack(message, false, settlement === 'release');
    } catch (error) {
      this.#onError(error, message);
    }
  }
}
