import type { RequestHandle, RequestResponse } from './types.js';

const enum State {
  Pending,
  Answered,
  Unanswered,
}

/**
 * One registered request: the routing index's entry, the handle returned to
 * the caller, and a link in its exchange's registration-ordered list, all in
 * one object so that a one-request exchange allocates as little as possible.
 *
 * The `response` promise is made only when somebody reads it: an exchange
 * consumed through `wait()` or `responses()` never pays for one.
 */
export class PendingRequest<Req, Res, Owner = unknown> implements RequestHandle<Res> {
  /** Next request of the same exchange, in registration order. */
  next: PendingRequest<Req, Res, Owner> | undefined;
  #state = State.Pending;
  #response: Res | undefined;
  #respondedAt = 0;
  #promise: Promise<Res> | undefined;
  /**
   * While pending and `response` was read: its resolvers. Once abandoned:
   * what makes the rejection, for a `response` read only then.
   */
  #settle: Resolvers<Res> | (() => Error) | undefined;

  constructor(
    readonly correlationId: string,
    readonly message: Req | undefined,
    readonly owner: Owner,
    readonly requestedAt: number,
  ) {}

  /** Whether the reply came. */
  get answered(): boolean {
    return this.#state === State.Answered;
  }

  /** Whether the request still waits for its reply. */
  get pending(): boolean {
    return this.#state === State.Pending;
  }

  /** When the reply came (clock time); 0 while it has not. */
  get respondedAt(): number {
    return this.#respondedAt;
  }

  /** The reply, once answered. */
  get responseMessage(): Res | undefined {
    return this.#response;
  }

  get response(): Promise<Res> {
    return (this.#promise ??= this.#createPromise());
  }

  /** Records the reply (again, when overwriting) and resolves `response`. */
  answer(message: Res, now: number): void {
    this.#response = message;
    this.#respondedAt = now;
    if (this.#state === State.Pending) {
      this.#state = State.Answered;
      (this.#settle as Resolvers<Res> | undefined)?.resolve(message);
      this.#settle = undefined;
    }
  }

  /** The exchange ended first: `response` rejects with what `failure` makes. */
  abandon(failure: () => Error): void {
    this.#state = State.Unanswered;
    const resolvers = this.#settle as Resolvers<Res> | undefined;
    this.#settle = failure;
    if (resolvers !== undefined) {
      // Handled before it rejects, so an unobserved response never surfaces
      // as an unhandled rejection; the caller's own chains still see it.
      this.#promise!.catch(ignore);
      resolvers.reject(failure());
    }
  }

  /** A snapshot for results and `responses()`. */
  snapshot(): RequestResponse<Req, Res> {
    const { correlationId, message: request, requestedAt } = this;
    if (this.#state !== State.Answered) return { correlationId, request, answered: false, requestedAt };
    const respondedAt = this.#respondedAt;
    return {
      correlationId,
      request,
      response: this.#response as Res,
      answered: true,
      requestedAt,
      respondedAt,
      latencyMs: respondedAt - requestedAt,
    };
  }

  #createPromise(): Promise<Res> {
    switch (this.#state) {
      case State.Answered:
        return Promise.resolve(this.#response as Res);
      case State.Unanswered: {
        const rejected = Promise.reject((this.#settle as () => Error)());
        rejected.catch(ignore);
        return rejected;
      }
      case State.Pending:
        return new Promise<Res>((resolve, reject) => {
          this.#settle = { resolve, reject };
        });
    }
  }
}

interface Resolvers<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (reason: unknown) => void;
}

function ignore(): void {}
