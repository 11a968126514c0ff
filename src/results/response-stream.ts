import type { RequestResponse } from '../types.js';

/**
 * The async iterator behind `exchange.responses()`: replies are pushed as
 * they arrive and pulled by `for await`; it finishes, after handing out what
 * it holds, when the exchange ends.
 */
export class ResponseStream<Req, Res> implements AsyncIterableIterator<RequestResponse<Req, Res>> {
  readonly #queue: RequestResponse<Req, Res>[] = [];
  readonly #onReturn: (stream: ResponseStream<Req, Res>) => void;
  /** Callers of `next()` waiting for a reply, first come first served (calls may overlap). */
  readonly #waiting: ((result: IteratorResult<RequestResponse<Req, Res>, undefined>) => void)[] = [];
  #ended = false;

  /**
   * @param onReturn - Called when the consumer stops early (`break`, `return()`).
   */
  constructor(onReturn: (stream: ResponseStream<Req, Res>) => void) {
    this.#onReturn = onReturn;
  }

  /** Hands a reply to the consumer, or queues it. */
  push(entry: RequestResponse<Req, Res>): void {
    const waiting = this.#waiting.shift();
    if (waiting === undefined) this.#queue.push(entry);
    else waiting({ value: entry, done: false });
  }

  /** No more replies will come. */
  end(): void {
    this.#ended = true;
    for (const waiting of this.#waiting.splice(0)) waiting({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<RequestResponse<Req, Res>, undefined>> {
    const entry = this.#queue.shift();
    if (entry !== undefined) return Promise.resolve({ value: entry, done: false });
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
    });
  }

  return(): Promise<IteratorResult<RequestResponse<Req, Res>, undefined>> {
    this.#queue.length = 0;
    if (!this.#ended) this.#onReturn(this);
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
