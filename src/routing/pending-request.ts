import { Answered, Unanswered } from '../results/snapshots.js';
import type { RequestHandle, RequestResponse } from '../types.js';

const enum State {
  Pending,
  Answered,
  Unanswered,
}

/** The exchange a request belongs to, as far as the request needs it. */
export interface RequestOwner {
  /** The error an unanswered request's `response` rejects with once the owner ended. */
  missedReplyError(): Error;
}

/**
 * One registered request: the routing index's entry, the handle returned to
 * the caller, and a link in its exchange's registration-ordered list, all in
 * one object so that a one-request exchange allocates as little as possible.
 *
 * The `response` promise is made only when somebody reads it: an exchange
 * consumed through `wait()` or `responses()` never pays for one.
 */
export class PendingRequest<Req, Res, Owner extends RequestOwner = RequestOwner> implements RequestHandle<Res> {
  /** Next request of the same exchange, in registration order. */
  next: PendingRequest<Req, Res, Owner> | undefined;
  #state = State.Pending;
  #response: Res | undefined;
  #respondedAt = 0;
  /**
   * `response`, once read: the promise with its resolvers while the request
   * is pending, the bare promise once it is settled (one field for both).
   */
  #responsePromise: Deferred<Res> | Promise<Res> | undefined;

  constructor(
    readonly correlationId: string,
    readonly message: Req | undefined,
    readonly owner: Owner,
    /** Relative to the controller's epoch. */
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

  /** When the reply came, relative to the controller's epoch; 0 while it has not. */
  get respondedAt(): number {
    return this.#respondedAt;
  }

  /** The reply, once answered. */
  get responseMessage(): Res | undefined {
    return this.#response;
  }

  get response(): Promise<Res> {
    const made = (this.#responsePromise ??= this.#createPromise());
    return made instanceof Promise ? made : made.promise;
  }

  /** Records the reply (again, when overwriting) and resolves `response`. */
  answer(message: Res, now: number): void {
    this.#response = message;
    this.#respondedAt = now;
    if (this.#state === State.Pending) {
      this.#state = State.Answered;
      const made = this.#responsePromise;
      if (made !== undefined && !(made instanceof Promise)) {
        made.resolve(message);
        this.#responsePromise = made.promise;
      }
    }
  }

  /** The exchange ended first: `response` rejects with the owner's `missedReplyError()`. */
  abandon(): void {
    this.#state = State.Unanswered;
    const made = this.#responsePromise;
    if (made !== undefined && !(made instanceof Promise)) {
      // Handled before it rejects, so an unobserved response never surfaces
      // as an unhandled rejection; the caller's own chains still see it.
      made.promise.catch(ignore);
      made.reject(this.owner.missedReplyError());
      this.#responsePromise = made.promise;
    }
  }

  /**
   * A snapshot for results and `responses()`, in clock time.
   * @param epoch - What the stored times are relative to.
   */
  snapshot(epoch: number): RequestResponse<Req, Res> {
    const { correlationId, message: request } = this;
    const requestedAt = epoch + this.requestedAt;
    if (this.#state !== State.Answered) return new Unanswered(correlationId, request, requestedAt);
    return new Answered(correlationId, request, this.#response as Res, requestedAt, epoch + this.#respondedAt, this.#respondedAt - this.requestedAt);
  }

  #createPromise(): Deferred<Res> | Promise<Res> {
    switch (this.#state) {
      case State.Answered:
        return Promise.resolve(this.#response as Res);
      case State.Unanswered: {
        const rejected = Promise.reject(this.owner.missedReplyError());
        rejected.catch(ignore);
        return rejected;
      }
      case State.Pending: {
        let resolve!: Deferred<Res>['resolve'];
        let reject!: Deferred<Res>['reject'];
        const promise = new Promise<Res>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        return { promise, resolve, reject };
      }
    }
  }
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (reason: unknown) => void;
}

function ignore(): void {}
