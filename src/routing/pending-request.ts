import { Answered, Unanswered } from '../results/snapshots.js';
import type { RequestHandle, RequestResponse } from '../types.js';

/**
 * Where a request is in its life: waiting, answered, or left unanswered by
 * its exchange's end; `held` while a reply for it is being recorded
 * elsewhere before it is handed over (see {@link PendingRequest.hold}), and
 * `recorded` once that reply is its answer.
 */
type State = 'pending' | 'held' | 'answered' | 'recorded' | 'unanswered';

/** The exchange a request belongs to, as far as the request needs it. */
export interface RequestOwner {
  /** The error an unanswered request's `response` rejects with once the owner ended. */
  missedReplyError(): Error;
}

/**
 * One registered request: the routing index's entry and a link in its
 * exchange's registration-ordered list, in one object. The caller never
 * holds it — it gets a {@link SealedHandle} — so that nothing outside the
 * package can answer, abandon or unlink it.
 *
 * The `response` promise is made only when somebody reads it: an exchange
 * consumed through `wait()` or `responses()` never pays for one.
 */
export class PendingRequest<Req, Res, Owner extends RequestOwner = RequestOwner> {
  /** Next request of the same exchange, in registration order. */
  next: PendingRequest<Req, Res, Owner> | undefined;
  #state: State = 'pending';
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
    return this.#state === 'answered' || this.#state === 'recorded';
  }

  /** Whether its answer is a reply a backplane recorded before handing it over: its end has nothing more to record. */
  get recorded(): boolean {
    return this.#state === 'recorded';
  }

  /** Whether the request still waits for its reply. */
  get pending(): boolean {
    return this.#state === 'pending';
  }

  /** Whether a reply is being recorded before it is handed over. */
  get held(): boolean {
    return this.#state === 'held';
  }

  /**
   * A reply came and is being recorded (by a backplane) before it is handed
   * over: no other copy may take its place meanwhile, and nothing may end
   * the request unanswered as if it had not come.
   */
  hold(): void {
    this.#state = 'held';
  }

  /** The held reply was not handed over after all: the request waits again. */
  release(): void {
    this.#state = 'pending';
  }

  /** When the reply came, relative to the controller's epoch; 0 while it has not. */
  get respondedAt(): number {
    return this.#respondedAt;
  }

  /** The reply, once answered. */
  get responseMessage(): Res | undefined {
    return this.#response;
  }

  /** The promise of the reply, made on first use. */
  get response(): Promise<Res> {
    const made = (this.#responsePromise ??= this.#createPromise());
    return made instanceof Promise ? made : made.promise;
  }

  /** Records the reply (again, when overwriting) and resolves `response`. */
  answer(message: Res, now: number): void {
    this.#response = message;
    this.#respondedAt = now;
    if (this.#state === 'pending' || this.#state === 'held') {
      this.#state = this.#state === 'held' ? 'recorded' : 'answered';
      const made = this.#responsePromise;
      if (made !== undefined && !(made instanceof Promise)) {
        made.resolve(message);
        this.#responsePromise = made.promise;
      }
    }
  }

  /** The exchange ended first: `response` rejects with the owner's `missedReplyError()`. */
  abandon(): void {
    this.#state = 'unanswered';
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
    if (!this.answered) return new Unanswered(correlationId, request, requestedAt);
    return new Answered(correlationId, request, this.#response as Res, requestedAt, epoch + this.#respondedAt, this.#respondedAt - this.requestedAt);
  }

  #createPromise(): Deferred<Res> | Promise<Res> {
    switch (this.#state) {
      case 'answered':
      case 'recorded':
        return Promise.resolve(this.#response as Res);
      case 'unanswered': {
        const rejected = Promise.reject(this.owner.missedReplyError());
        rejected.catch(ignore);
        return rejected;
      }
      case 'pending':
      case 'held': {
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

/**
 * What `registerRequest()` returns: the ID and the promise of the reply, and
 * no way to the entry behind them — its only own property is
 * `correlationId`. It refers to the entry, never the reverse, so a handle
 * the caller drops costs an open exchange nothing.
 */
export class SealedHandle<Res> implements RequestHandle<Res> {
  readonly correlationId: string;
  readonly #request: PendingRequest<unknown, Res>;

  constructor(request: PendingRequest<unknown, Res>) {
    this.correlationId = request.correlationId;
    this.#request = request;
  }

  get response(): Promise<Res> {
    return this.#request.response;
  }
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (reason: unknown) => void;
}

function ignore(): void {}
