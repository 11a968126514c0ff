import type { AsyncLocalStorage } from 'node:async_hooks';
import { describe } from './_describe.js';
import { checkId } from './_validate.js';
import type { Clock } from './clock.js';
import { ExchangeEndedError, ExchangeSealedError, InvalidArgumentError } from './errors.js';
import { exchangeTracing, type ExchangeTraceContext } from './events.js';
import type { RegisterRequestOptions } from './options.js';
import { Result } from './results/snapshots.js';
import { ResponseStream } from './results/response-stream.js';
import { SealedHandle, type PendingRequest } from './routing/pending-request.js';
import { OPEN_SET_INDEX } from './structures/open-set.js';
import type { AbortFanout } from './timing/abort-fanout.js';
import type { DeadlineQueue } from './timing/deadline-queue.js';
import type { ExchangeResult, ExchangeState, ExchangeStatus, RequestHandle, RequestResponse, TraceCarrier } from './types.js';

/**
 * What an exchange needs from its controller, which hands it to every
 * exchange it creates. The exchange keeps its own requests in order; the
 * controller owns the index they are routed by and everything that follows
 * an end.
 * @internal
 */
export interface ExchangeHost<Req, Res> {
  readonly clock: Clock;
  /**
   * Clock time the controller started. Times of requests and exchanges are
   * kept relative to it: small integers, not boxed doubles, for the first
   * 2³¹ ms (≈ 24.8 days) of a controller — bench:structures "epoch-times"
   * reads 1.20× and 89 against 104 bytes; past that offset, 1.01×.
   */
  readonly epoch: number;
  readonly maxIdLength: number;
  readonly storage: AsyncLocalStorage<Exchange<any, any>>;
  readonly fanout: AbortFanout;
  readonly deadlines: DeadlineQueue<Exchange<Req, Res>>;
  /** A fresh correlation ID, unique among the pending ones. */
  newId(): string;
  /** The request pending under `correlationId`, whichever exchange holds it. */
  find(correlationId: string): Entry<Req, Res> | undefined;
  /**
   * Makes `exchange`'s request and adds it to the index under `correlationId`
   * (generated when `undefined`); throws for a conflict or a full index.
   */
  register(exchange: Exchange<Req, Res>, correlationId: string | undefined, message: Req | undefined, now: number): Entry<Req, Res>;
  /** Announces a request the exchange has taken into its list. */
  registered(exchange: Exchange<Req, Res>, entry: Entry<Req, Res>): void;
  /** Announces a reply handed to `entry`: before the end it may cause, which is announced after it. */
  delivered(exchange: Exchange<Req, Res>, entry: Entry<Req, Res>, forwarded: boolean): void;
  /** Adds a new exchange to the open ones and announces it. */
  created(exchange: Exchange<Req, Res>): void;
  /**
   * Everything after an end, once the result is built: the index, the
   * duplicate window, the backplane, rollback tags, events, the hook.
   * Answers a promise when the tags are written asynchronously.
   */
  ended(exchange: Exchange<Req, Res>, last: Entry<Req, Res> | undefined, result: ExchangeResult<Req, Res>, endedAt: number): PromiseLike<void> | undefined;
  /** The ID of the exchange created as number `seq`, for exchanges created without one. */
  exchangeId(seq: number): string;
}

type Entry<Req, Res> = PendingRequest<Req, Res, Exchange<Req, Res>>;

/**
 * One synchronous operation waiting on one or more asynchronous replies —
 * typically one HTTP request being served, or one consumed message. Created
 * by {@link Controller.createExchange} or {@link Controller.synchronize}.
 *
 * It ends exactly once: when `wait()` has sealed it and every request is
 * answered (`completed`), when its signal aborts (`aborted`), when its
 * timeout fires (`timed-out`), or when it or its controller is closed
 * (`closed`). Whatever ends it first wins; every unanswered ID is then tagged
 * for rollback and its `response` rejects with {@link ExchangeEndedError}.
 */
export class Exchange<Req = unknown, Res = unknown> implements Disposable, AsyncDisposable {
  /**
   * The ID given to `createExchange`, or the creation number to make one
   * from when first read: a string held by every open exchange would cost
   * ≈ 56 bytes each (the 512-byte budget per open exchange), and most are
   * only made as the exchange ends, for its result.
   */
  #id: string | number;
  readonly #host: ExchangeHost<Req, Res>;
  /** Relative to the controller's epoch. */
  readonly #createdAt: number;
  readonly #signal: AbortSignal | undefined;
  readonly #timeout: number;
  #deadlineTicket = 0;
  #state: ExchangeState = 'open';
  /**
   * The last request registered. The list is circular — the last request's
   * `next` is the first — so one field holds both ends.
   */
  #last: Entry<Req, Res> | undefined;
  #unanswered = 0;
  /** Made only when `signal` or `responses()` is used. */
  #extras: Extras<Req, Res> | undefined;
  /** Set once, when the exchange ends; its status and reason are the exchange's. */
  #result: ExchangeResult<Req, Res> | undefined;
  #settled: Promise<ExchangeResult<Req, Res>> | undefined;
  /** @internal Where the controller keeps it while it is open. */
  [OPEN_SET_INDEX] = -1;
  /** Resolves `wait()`'s promise; {@link TAGS_WRITTEN} once the end's tags are written. */
  #settle: ((result: ExchangeResult<Req, Res>) => void) | typeof TAGS_WRITTEN | undefined;

  /** @internal Use {@link Controller.createExchange}. */
  constructor(host: ExchangeHost<Req, Res>, id: string | number, timeout: number, signal: AbortSignal | undefined) {
    this.#host = host;
    this.#id = id;
    this.#createdAt = host.clock.now() - host.epoch;
    if (signal?.aborted) {
      this.#signal = undefined;
      this.#timeout = Infinity;
      host.created(this);
      this.onAbort(signal.reason);
      return;
    }
    this.#timeout = timeout;
    this.#signal = signal;
    if (signal !== undefined) host.fanout.add(signal, this);
    if (timeout !== Infinity) this.#deadlineTicket = host.deadlines.add(this, timeout);
    // Announced last: a subscriber may end the exchange at once, and its end
    // must find the signal and the deadline to unbind.
    host.created(this);
  }

  /**
   * The exchange's ID: the one given to `createExchange`, or a generated one
   * — a random prefix per controller and a counter, unique without being
   * secret (correlation IDs are the secret ones).
   */
  get id(): string {
    const id = this.#id;
    return typeof id === 'string' ? id : (this.#id = this.#host.exchangeId(id));
  }

  /** `open`, then `sealed` once `wait()` was called, then `ended`. */
  get state(): ExchangeState {
    return this.#state;
  }

  /** When the exchange times out (clock ms); `undefined` without a timeout. */
  get deadline(): number | undefined {
    return this.#timeout === Infinity ? undefined : this.#host.epoch + this.#createdAt + this.#timeout;
  }

  /** How the exchange ended; `undefined` while it has not. */
  get status(): ExchangeStatus | undefined {
    return this.#result?.status;
  }

  /**
   * Aborted when the exchange ends without completing (its reason: the abort
   * reason, or a `TimeoutError` `DOMException` on timeout), so that work done
   * on its behalf — a `fetch`, a publish — can be cancelled with it. Made on
   * first use.
   */
  get signal(): AbortSignal {
    const extras = (this.#extras ??= {});
    if (extras.ownSignal === undefined) {
      extras.ownSignal = new AbortController();
      if (this.#result !== undefined && this.#result.status !== 'completed') this.#abortOwnSignal(extras.ownSignal, this.#result);
    }
    return extras.ownSignal.signal;
  }

  /**
   * A fresh correlation ID, unique among the controller's pending requests.
   * Same as {@link Controller.newCorrelationId}.
   */
  newCorrelationId(): string {
    return this.#host.newId();
  }

  /**
   * Registers an outgoing request, so that its reply is routed here.
   *
   * @param options - The correlation ID (generated when absent) and the request message.
   * @returns The ID to stamp on the message, and a promise of the reply.
   * @throws {@link ExchangeSealedError} after `wait()`.
   * @throws {@link ExchangeEndedError} after the exchange ended.
   * @throws {@link CorrelationIdConflictError} when the ID is pending anywhere in the controller.
   * @throws {@link CapacityError} when `maxPendingRequests` are pending.
   * @throws {@link InvalidArgumentError} for an ID that is not a non-empty string of at most `maxIdLength` characters.
   *
   * @example
   * ```ts
   * import amqp from 'amqplib';
   * import { Controller } from 'rrxc';
   *
   * const controller = new Controller<{ text: string }, { upper: string }>();
   * const channel = await (await amqp.connect('amqp://127.0.0.1')).createChannel();
   * const xc = controller.createExchange({ timeout: 5_000 });
   * const job = { text: 'hello' };
   * const { correlationId, response } = xc.registerRequest({ message: job });
   * channel.sendToQueue('jobs', Buffer.from(JSON.stringify(job)), { correlationId, replyTo: 'replies' });
   * const answer = await response;
   * ```
   */
  registerRequest(options: RegisterRequestOptions<Req> = {}): RequestHandle<Res> {
    if (this.#state !== 'open') {
      throw this.#state === 'sealed' ? new ExchangeSealedError(this.id) : this.#endedError('cannot register a request');
    }
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError(`registerRequest options must be an object, got ${describe(options)}`);
    }
    const host = this.#host;
    const { correlationId: given, carrier } = options;
    if (given !== undefined) checkId(given, 'correlationId', host.maxIdLength);
    if (carrier !== undefined && (typeof carrier !== 'object' || carrier === null)) {
      throw new InvalidArgumentError(`carrier must be an object of trace context fields, got ${describe(carrier)}`);
    }
    const entry = host.register(this, given, options.message, host.clock.now() - host.epoch);
    const last = this.#last;
    if (last === undefined) entry.next = entry;
    else {
      entry.next = last.next;
      last.next = entry;
    }
    this.#last = entry;
    this.#unanswered++;
    if (carrier !== undefined) ((this.#extras ??= {}).carriers ??= new Map()).set(entry.correlationId, carrier);
    // Announced once counted: a subscriber may call wait() at once.
    host.registered(this, entry);
    return new SealedHandle(entry);
  }

  /**
   * Seals the exchange — no more requests — and waits for it to end: when
   * every request is answered (at once if there is none, or all already
   * are), or when it is aborted, times out or is closed first. Never rejects
   * for those: the result says what happened. Calling it again returns the
   * same promise. Resolves once the unanswered IDs are tagged for rollback.
   */
  wait(): Promise<ExchangeResult<Req, Res>> {
    if (this.#state === 'open') {
      this.#state = 'sealed';
      if (this.#unanswered === 0) this.#end('completed', NO_REASON);
    }
    if (this.#settled === undefined) {
      if (this.#settle === TAGS_WRITTEN) this.#settled = Promise.resolve(this.#result!);
      else {
        this.#settled = new Promise((resolve) => (this.#settle = resolve));
      }
    }
    return this.#settled;
  }

  /**
   * The replies as they arrive — first those that already came, in arrival
   * order — finishing when the exchange ends. Breaking out of the loop early
   * is fine. Does not seal the exchange.
   *
   * @example
   * ```ts
   * import { Controller } from 'rrxc';
   *
   * const controller = new Controller<string, number>();
   * const xc = controller.createExchange({ timeout: 5_000 });
   * for (const part of ['a', 'b', 'c']) xc.registerRequest({ message: part }); // …and send each
   * for await (const { correlationId, response } of xc.responses()) {
   *   console.log(`${correlationId} answered`, response);
   * }
   * ```
   */
  responses(): AsyncIterableIterator<RequestResponse<Req, Res>> {
    const stream = new ResponseStream<Req, Res>((s) => this.#extras?.streams?.delete(s));
    const answered = this.#entries().filter((e) => e.answered);
    answered.sort((a, b) => a.respondedAt - b.respondedAt);
    for (const e of answered) stream.push(e.snapshot(this.#host.epoch));
    if (this.#state === 'ended') stream.end();
    else ((this.#extras ??= {}).streams ??= new Set()).add(stream);
    return stream;
  }

  /**
   * Runs `fn` with this exchange as the controller's `currentExchange()`,
   * through `AsyncLocalStorage`: code deep in the call stack can register
   * requests without being handed the exchange.
   *
   * @returns What `fn` returns.
   * @throws {@link InvalidArgumentError} when `fn` is not a function.
   */
  run<T>(fn: () => T): T {
    if (typeof fn !== 'function') throw new InvalidArgumentError(`run needs a function, got ${describe(fn)}`);
    return this.#host.storage.run(this, fn);
  }

  /**
   * Ends the exchange with status `closed` unless it already ended: its
   * unanswered IDs are tagged for rollback. Idempotent.
   *
   * @param reason - Kept as the result's `reason` and the `cause` of
   *   rejected responses, whatever its value; omit it for none.
   */
  close(...reason: [reason?: unknown]): void {
    this.#end('closed', reason.length > 0 ? reason[0] : NO_REASON, undefined, true);
  }

  /** Closes the exchange (`using xc = controller.createExchange()`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes the exchange and waits until its rollback tags are written (`await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.wait();
  }

  /**
   * The request message registered under `correlationId` in this exchange.
   * @throws {@link InvalidArgumentError} for an ID that is not a non-empty string of at most `maxIdLength` characters.
   */
  getRequest(correlationId: string): Req | undefined {
    return this.#find(correlationId)?.message;
  }

  /**
   * The reply received for `correlationId` in this exchange, if it came.
   * @throws {@link InvalidArgumentError} for an ID that is not a non-empty string of at most `maxIdLength` characters.
   */
  getResponse(correlationId: string): Res | undefined {
    return this.#find(correlationId)?.responseMessage;
  }

  /**
   * Whether this exchange registered a request under `correlationId`.
   * @throws {@link InvalidArgumentError} for an ID that is not a non-empty string of at most `maxIdLength` characters.
   */
  hasRequest(correlationId: string): boolean {
    return this.#find(correlationId) !== undefined;
  }

  /**
   * Milliseconds since the request under `correlationId` was registered here; `undefined` if it was not.
   * @throws {@link InvalidArgumentError} for an ID that is not a non-empty string of at most `maxIdLength` characters.
   */
  requestAge(correlationId: string): number | undefined {
    const entry = this.#find(correlationId);
    return entry === undefined ? undefined : this.#host.clock.now() - this.#host.epoch - entry.requestedAt;
  }

  /** @internal Hands a reply to `entry`, which the controller found pending here. */
  deliver(entry: Entry<Req, Res>, message: Res, forwarded: boolean): void {
    const host = this.#host;
    const now = host.clock.now() - host.epoch;
    entry.answer(message, now);
    this.#unanswered--;
    const streams = this.#extras?.streams;
    if (streams !== undefined) {
      const snapshot = entry.snapshot(host.epoch);
      for (const stream of streams) stream.push(snapshot);
    }
    host.delivered(this, entry, forwarded);
    if (this.#unanswered === 0 && this.#state === 'sealed') this.#end('completed', NO_REASON, now);
  }

  /**
   * @internal A forwarded reply to the pending `entry` is being recorded
   * before it is handed over: until {@link Exchange.deliverHeld} or
   * {@link Exchange.release}, no other copy takes its place, and a deadline
   * or an abort that comes meanwhile ends the exchange only after — the
   * reply came in time. `close()` and fencing do not wait: the held ID is
   * then `undecided`.
   */
  hold(entry: Entry<Req, Res>): void {
    entry.hold();
    const extras = (this.#extras ??= {});
    extras.holds = (extras.holds ?? 0) + 1;
  }

  /** @internal The held reply is recorded: hands it over (nothing, if the exchange was closed meanwhile). */
  deliverHeld(entry: Entry<Req, Res>, message: Res): void {
    if (!entry.held) return;
    this.#extras!.holds!--;
    this.deliver(entry, message, true);
    this.#endIfHeldUp();
  }

  /** @internal The held reply was not recorded: the request waits again (or is left, if the exchange was closed meanwhile). */
  release(entry: Entry<Req, Res>): void {
    if (!entry.held) return;
    entry.release();
    this.#extras!.holds!--;
    this.#endIfHeldUp();
  }

  #endIfHeldUp(): void {
    const extras = this.#extras!;
    const held = extras.heldEnd;
    if (held === undefined || extras.holds! > 0) return;
    extras.heldEnd = undefined;
    this.#end(held.status, held.reason);
  }

  /** @internal Replaces the reply of an answered `entry` (`overwrite: true`). */
  overwrite(entry: Entry<Req, Res>, message: Res): void {
    entry.answer(message, this.#host.clock.now() - this.#host.epoch);
  }

  /**
   * @internal Traces the rest of this exchange's life on `trace`, whose
   * `start` is being published: its end, or at once if it ended already.
   */
  trace(trace: ExchangeTraceContext): void {
    (this.#extras ??= {}).trace = trace;
    if (this.#result !== undefined) this.#traceEnd(trace, this.#result);
  }

  /** @internal The trace context the request under `correlationId` was registered with. */
  carrierOf(correlationId: string): TraceCarrier | undefined {
    return this.#extras?.carriers?.get(correlationId);
  }

  /** @internal What an unanswered request's `response` rejects with. */
  missedReplyError(): ExchangeEndedError {
    return this.#endedError('the reply did not come');
  }

  /** @internal The deadline passed. */
  onDeadline(): void {
    this.#end('timed-out', NO_REASON);
  }

  /** @internal The bound signal aborted. */
  onAbort(reason: unknown): void {
    this.#end(abortStatus(reason), reason);
  }

  /** @internal The backplane lost this instance's claim on its IDs: ends now, held replies left `undecided`. */
  fence(reason: unknown): void {
    this.#end(abortStatus(reason), reason, undefined, true);
  }

  #find(correlationId: string): Entry<Req, Res> | undefined {
    checkId(correlationId, 'correlationId', this.#host.maxIdLength);
    if (this.#state !== 'ended') {
      const entry = this.#host.find(correlationId);
      return entry?.owner === this ? entry : undefined;
    }
    return this.#entries().find((e) => e.correlationId === correlationId);
  }

  /** The requests in registration order (off the hot paths: it allocates). */
  #entries(): Entry<Req, Res>[] {
    const entries: Entry<Req, Res>[] = [];
    const last = this.#last;
    if (last !== undefined) for (let e = last.next!; ; e = e.next!) {
      entries.push(e);
      if (e === last) break;
    }
    return entries;
  }

  /**
   * @param now - The time it ends (relative to the epoch), when the caller
   *   read the clock already.
   * @param atOnce - Not after the held replies (`close()`, fencing): they are left `undecided`.
   */
  #end(status: ExchangeStatus, reason: unknown, now?: number, atOnce = false): void {
    if (this.#state === 'ended') return;
    const holding = this.#extras;
    if (holding?.holds !== undefined && holding.holds > 0 && !atOnce) {
      holding.heldEnd ??= { status, reason };
      return;
    }
    const host = this.#host;
    // Read before anything changes: a clock that throws leaves the exchange
    // as it was, open, rather than half ended.
    const endedAt = now ?? host.clock.now() - host.epoch;
    this.#state = 'ended';
    if (this.#timeout !== Infinity) host.deadlines.delete(this.#timeout, this.#deadlineTicket);
    if (this.#signal !== undefined) host.fanout.delete(this.#signal, this);

    const last = this.#last;
    let count = 0;
    if (last !== undefined) for (let e = last.next!; ; e = e.next!) {
      count++;
      if (e === last) break;
    }
    // Sized up front: an array grown by push() reserves 17 slots for one entry.
    const entries = new Array<RequestResponse<Req, Res>>(count);
    let unanswered: string[] | undefined;
    // Held replies, when the end could not wait for them: recorded as delivered or not, nobody here knows yet.
    let undecided: string[] | undefined;
    if (last !== undefined) {
      let i = 0;
      for (let e = last.next!; ; e = e.next!) {
        if (e.held) (undecided ??= []).push(e.correlationId);
        else if (!e.answered) (unanswered ??= []).push(e.correlationId);
        entries[i++] = e.snapshot(host.epoch);
        if (e === last) break;
      }
    }
    if (holding?.holds !== undefined) {
      holding.holds = 0;
      holding.heldEnd = undefined;
    }
    const result = new Result<Req, Res>(
      this.id,
      status,
      unanswered === undefined && undecided === undefined,
      host.epoch + this.#createdAt,
      host.epoch + endedAt,
      endedAt - this.#createdAt,
      entries,
      unanswered ?? NONE,
      NONE,
      undecided ?? NONE,
    );
    if (reason !== NO_REASON) (result as { reason?: unknown }).reason = reason;
    this.#result = result;
    // Only now, with status and reason known: the rejections carry them.
    if (unanswered !== undefined || undecided !== undefined) for (let e = last!.next!; ; e = e.next!) {
      if (!e.answered) e.abandon();
      if (e === last) break;
    }

    // The controller's bookkeeping (index, duplicate window, rollback tags)
    // comes before anything that runs user code — an abort listener, a
    // stream consumer — so that a reply registered from there is routed right.
    const tagging = host.ended(this, last, result, endedAt);
    const extras = this.#extras;
    if (extras !== undefined) {
      if (extras.trace !== undefined) this.#traceEnd(extras.trace, result);
      if (status !== 'completed' && extras.ownSignal !== undefined) this.#abortOwnSignal(extras.ownSignal, result);
      if (extras.streams !== undefined) for (const stream of extras.streams) stream.end();
      extras.streams = undefined;
    }
    if (tagging === undefined) this.#tagged();
    else tagging.then(() => this.#tagged());
  }

  #traceEnd(trace: ExchangeTraceContext, result: ExchangeResult<Req, Res>): void {
    trace.result = result;
    if (result.status !== 'completed') {
      trace.error = this.#endedError('the exchange did not complete');
      exchangeTracing.error.publish(trace);
    }
    exchangeTracing.asyncStart.publish(trace);
    exchangeTracing.asyncEnd.publish(trace);
  }

  #tagged(): void {
    const settle = this.#settle;
    this.#settle = TAGS_WRITTEN;
    if (typeof settle === 'function') settle(this.#result!);
  }

  #abortOwnSignal(ownSignal: AbortController, result: ExchangeResult<Req, Res>): void {
    ownSignal.abort(
      'reason' in result
        ? result.reason
        : new DOMException(`exchange ${this.id} ${result.status}`, result.status === 'timed-out' ? 'TimeoutError' : 'AbortError'),
    );
  }

  #endedError(what: string): ExchangeEndedError {
    const result = this.#result!;
    const message = `${what}: exchange \`${this.id}\` ended (${result.status})`;
    return 'reason' in result ? new ExchangeEndedError(message, result.status, result.reason) : new ExchangeEndedError(message, result.status);
  }
}

/** What an exchange makes only when asked for. */
interface Extras<Req, Res> {
  /** Its context on the tracing channel, when someone subscribed as it was made. */
  trace?: ExchangeTraceContext;
  /** The trace contexts requests were registered with, by correlation ID. */
  carriers?: Map<string, TraceCarrier>;
  ownSignal?: AbortController;
  streams?: Set<ResponseStream<Req, Res>> | undefined;
  /** Replies being recorded by the backplane before they are handed over (see {@link Exchange.hold}). */
  holds?: number;
  /** An end that came while replies were held: it happens once the last is settled. */
  heldEnd?: { readonly status: ExchangeStatus; readonly reason: unknown } | undefined;
}

/** The status of an end by `reason`: `timed-out` for a `TimeoutError`, else `aborted`. */
function abortStatus(reason: unknown): ExchangeStatus {
  return reason instanceof DOMException && reason.name === 'TimeoutError' ? 'timed-out' : 'aborted';
}

/** The end's rollback tags are written: `wait()` can resolve at once. */
const TAGS_WRITTEN: unique symbol = Symbol('tags written');

/** `unanswered` of every exchange that left none: shared, so a completed exchange allocates no array for it. */
const NONE: readonly string[] = Object.freeze([]);

/** Marks an end without a reason, apart from every value a reason can take (`undefined` included). */
const NO_REASON: unique symbol = Symbol('no reason');
