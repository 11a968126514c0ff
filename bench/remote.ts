// The "other side" every implementation talks to: an in-memory queue standing
// in for a broker or socket. Requests are collected as they are sent and
// answered together on the next event-loop turn (setImmediate), the way
// replies arrive in batches from I/O. The remote is the same code for every
// implementation; only the wire message and how a reply is fed back in
// (`answer`) differ, and those belong to each implementation.

/** The request payload. Shared objects, so payload bytes never count. */
export interface Payload {
  /** The remote loses this request: it is never answered (the exchange must time out). */
  readonly drop: boolean;
}

/** Answered by the remote. */
export const ANSWERED: Payload = Object.freeze({ drop: false });
/** Never answered by the remote. */
export const DROPPED: Payload = Object.freeze({ drop: true });

export class Remote<Message> {
  readonly #answer: (message: Message) => void;
  readonly #auto: boolean;
  // Two arrays swapped on every flush: the transport allocates nothing per batch.
  #queue: Message[] = [];
  #spare: Message[] = [];
  #scheduled = false;

  /**
   * @param answer - Feeds the reply to `message` back into the implementation
   *   (it skips dropped payloads itself).
   * @param auto - Flush on the next turn by itself; when false, the scenario
   *   calls {@link flush} (to time the routing of replies alone).
   */
  constructor(answer: (message: Message) => void, auto: boolean) {
    this.#answer = answer;
    this.#auto = auto;
  }

  /** Requests sent and not answered yet. */
  get queued(): number {
    return this.#queue.length;
  }

  send(message: Message): void {
    this.#queue.push(message);
    if (this.#auto && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Answers every queued request, in order. */
  readonly flush = (): void => {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = this.#spare;
    for (let i = 0; i < batch.length; i++) this.#answer(batch[i]!);
    batch.length = 0;
    this.#spare = batch;
  };

  /** Hands every queued request to `visit` instead of answering it, and forgets it. */
  drain(visit: (message: Message) => void): void {
    const batch = this.#queue;
    for (let i = 0; i < batch.length; i++) visit(batch[i]!);
    batch.length = 0;
  }
}
