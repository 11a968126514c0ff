import { AsyncLocalStorage } from 'node:async_hooks';
import { nanoid } from 'nanoid';
import { describe } from './_describe.js';
import { checkId, checkOptionsObject, checkTtl, idError } from './_validate.js';
import type { BackplaneRouter, TagStore } from './adapters.js';
import { ControllerClosedError, InvalidArgumentError } from './errors.js';
import {
  exchangeCreatedChannel,
  exchangeEndedChannel,
  exchangeTracing,
  requestRegisteredChannel,
  responseChannels,
  type ExchangeEndedMessage,
  type ExchangeMessage,
  type ExchangeTraceContext,
  type RequestMessage,
  type ResponseMessage,
} from './events.js';
import { Exchange, type ExchangeHost } from './exchange.js';
import { MemoryTagStore } from './memory-tag-store.js';
import {
  checkExchangeOptions,
  CLAIM_KEYS,
  resolveControllerOptions,
  REQUEST_KEYS,
  TAG_KEYS,
  type ClaimOptions,
  type ControllerOptions,
  type CreateExchangeOptions,
  type RegisterRequestOptions,
  type RegisterResponseOptions,
  type RequestOptions,
  type ResolvedOptions,
  type SynchronizeOptions,
  type TagOptions,
} from './options.js';
import { isThenable, RollbackTags } from './rollback.js';
import { CorrelationIndex } from './routing/correlation-index.js';
import { DuplicateWindow } from './routing/duplicate-window.js';
import { PendingRequest } from './routing/pending-request.js';
import { OpenSet } from './structures/open-set.js';
import { AbortFanout } from './timing/abort-fanout.js';
import { DeadlineQueue } from './timing/deadline-queue.js';
import type { ExchangeResult, RequestHandle, ResponseOutcome } from './types.js';

type Entry<Req, Res> = PendingRequest<Req, Res, Exchange<Req, Res>>;

/**
 * Owns every open exchange of a process (or of one logical service), the
 * correlation index that routes replies to them, and the tag store where
 * unanswered IDs are tagged for rollback.
 *
 * @typeParam Req - Type of the request messages.
 * @typeParam Res - Type of the reply messages.
 *
 * @example An HTTP handler waiting for a worker's reply on a queue
 * ```ts
 * import { createServer } from 'node:http';
 * import { Controller } from 'rrxc';
 *
 * type Job = { a: number; b: number };
 * type Answer = { sum: number };
 * // Your queue client: publishes jobs, calls back with each reply.
 * declare const queue: {
 *   publish(job: Job, options: { correlationId: string }): Promise<void>;
 *   onReply(handler: (reply: { correlationId: string; body: Answer; ack(): void }) => Promise<void>): void;
 * };
 * declare function compensate(answer: Answer): Promise<void>;
 *
 * const controller = new Controller<Job, Answer>({ timeout: 5_000 });
 *
 * // the reply consumer, anywhere in the process
 * queue.onReply(async (reply) => {
 *   const outcome = await controller.registerResponse({ correlationId: reply.correlationId, message: reply.body });
 *   if (outcome === 'rolled-back') await compensate(reply.body);
 *   reply.ack();
 * });
 *
 * // the handler: its exchange aborts if the client goes away (expressExchange and fastifyExchange of rrxc/integrations do this for you)
 * createServer(async (req, res) => {
 *   const client = new AbortController();
 *   res.once('close', () => res.writableFinished || client.abort());
 *   const job: Job = { a: 1, b: 2 };
 *   const result = await controller.synchronize({ signal: client.signal }, async (xc) => {
 *     const { correlationId } = xc.registerRequest({ message: job });
 *     await queue.publish(job, { correlationId });
 *   });
 *   if (result.status !== 'completed') return void res.writeHead(504).end(); // its ID is now tagged for rollback
 *   res.end(JSON.stringify(result.entries[0]?.response));
 * }).listen(8080);
 * ```
 */
export class Controller<Req = unknown, Res = unknown> implements AsyncDisposable {
  readonly #options: ResolvedOptions<Req, Res>;
  readonly #index: CorrelationIndex<Entry<Req, Res>>;
  /** The IDs of ended exchanges answered lately, for `duplicate`. */
  readonly #answered: DuplicateWindow;
  /** Forwarded replies being recorded before they are handed over, by ID: copies meanwhile wait for them. */
  readonly #holding = new Map<string, Promise<ResponseOutcome>>();
  readonly #open = new OpenSet<Exchange<Req, Res>>();
  readonly #tagStore: TagStore;
  readonly #ownsTagStore: boolean;
  readonly #rollback: RollbackTags<Req, Res>;
  readonly #storage = new AsyncLocalStorage<Exchange<Req, Res>>();
  /** Clock time the controller started: internal times are kept relative to it. */
  readonly #epoch: number;
  readonly #host: ExchangeHost<Req, Res>;
  /** Generated exchange IDs are this, then a counter: unique, and far cheaper than a nanoid each. */
  readonly #exchangePrefix = `${nanoid(8)}-`;
  #exchanges = 0;
  #closed: Promise<void> | undefined;

  /**
   * @param options - See {@link ControllerOptions}; every one is optional.
   * @throws {@link InvalidArgumentError} for an unknown option or a bad value.
   */
  constructor(options?: ControllerOptions<Req, Res>) {
    const resolved = resolveControllerOptions(options);
    this.#options = resolved;
    const { backplane } = resolved;
    const epoch = resolved.clock.now();
    this.#epoch = epoch;
    this.#answered = new DuplicateWindow(resolved.duplicateWindow, resolved.maxDuplicates, resolved.clock, epoch);
    const { newId } = resolved;
    const prefix = newId === undefined ? (backplane?.idPrefix ?? '') : '';
    this.#index = new CorrelationIndex(resolved.maxPendingRequests, newId, prefix, resolved.maxIdLength);
    this.#ownsTagStore = resolved.tagStore === undefined;
    this.#tagStore = resolved.tagStore ?? new MemoryTagStore({ maxTags: resolved.maxTags, clock: resolved.clock });
    this.#rollback = new RollbackTags(this.#tagStore, resolved, this);
    this.#host = {
      clock: resolved.clock,
      epoch,
      maxIdLength: resolved.maxIdLength,
      storage: this.#storage,
      fanout: new AbortFanout(),
      deadlines: new DeadlineQueue(resolved.clock),
      newId: () => this.#index.newId(),
      find: (correlationId) => this.#index.get(correlationId),
      register: (exchange, correlationId, message, now) => this.#register(exchange, correlationId, message, now),
      registered: (exchange, entry) => this.#registered(exchange, entry),
      delivered: (exchange, entry, forwarded) => this.#publishOutcome(entry.correlationId, 'delivered', forwarded, exchange),
      created: (exchange) => this.#created(exchange),
      ended: (exchange, last, result, endedAt) => this.#ended(exchange, last, result, endedAt),
      exchangeId: (seq) => this.#exchangePrefix + seq.toString(36),
    };
    const router: BackplaneRouter = {
      rollbackTag: resolved.rollbackTag,
      committedTag: resolved.committedTag,
      rollbackTtl: resolved.rollbackTtl,
      duplicateWindow: resolved.duplicateWindow,
      route: (correlationId, message, overwrite, record) => {
        if (this.#closed !== undefined) return SETTLED.unmatched;
        return record === undefined ? this.#route(correlationId, message as Res, overwrite, false) : this.#routeHeld(correlationId, message as Res, overwrite, record);
      },
      abandon: (reason) => this.#endAll((exchange) => exchange.fence(reason)),
    };
    backplane?.start(router);
  }

  /** Number of exchanges that have not ended. */
  get openExchanges(): number {
    return this.#open.size;
  }

  /** Number of requests registered in open exchanges (what `maxPendingRequests` bounds). */
  get pendingRequests(): number {
    return this.#index.size;
  }

  /**
   * Creates an exchange: one operation that waits for replies. It is bound to
   * `signal` and to `timeout` (or the controller's default), whichever ends
   * it first.
   *
   * @throws {@link ControllerClosedError} after `close()`.
   * @throws {@link InvalidArgumentError} for a bad signal, timeout or ID, or an unknown option.
   */
  createExchange(options?: CreateExchangeOptions): Exchange<Req, Res> {
    return this.#traced(this.#checkExchangeOptions(options), returnExchange);
  }

  /**
   * A fresh correlation ID, unique among the pending requests of this controller.
   * Made before any request holds it, it is not placed in a slot: registered
   * later, it is kept in a `Map`, and its reply costs a look-up there.
   * `registerRequest()` without an ID makes one that is routed faster.
   * @throws {@link ControllerClosedError} after `close()`.
   */
  newCorrelationId(): string {
    if (this.#closed !== undefined) throw new ControllerClosedError();
    return this.#index.newId();
  }

  /**
   * Routes a reply to the exchange waiting for it: for a generated ID, a
   * read of the slot it names; for others, a `Map` look-up. The duplicate
   * window, then the tag store, then the backplane are consulted only when
   * it is not pending here.
   *
   * Never rejects for a routing result — the outcome says what happened, so
   * a queue consumer can decide ack, nack or requeue:
   *
   * | outcome | meaning | a consumer should |
   * |---|---|---|
   * | `delivered` | handed to its exchange | ack |
   * | `duplicate` | already answered | ack (drop the copy) |
   * | `overwritten` | replaced the earlier answer (`overwrite: true`) | ack |
   * | `rolled-back` | its exchange ended unanswered | ack, then compensate |
   * | `unmatched` | nobody owns it | its own policy: dead-letter, bounded requeue, drop |
   *
   * @returns The outcome.
   * @throws {@link InvalidArgumentError} (as a rejection) for a bad correlation ID.
   * @throws {@link ControllerClosedError} (as a rejection) after `close()`.
   * @throws {@link TagStoreError} (as a rejection) when the ID had to be looked up in an asynchronous tag store that failed or timed out.
   * @throws {@link BackplaneError} (as a rejection) when a backplane could not tell what became of a forwarded reply; retrying later is safe.
   */
  registerResponse(options: RegisterResponseOptions<Res>): Promise<ResponseOutcome> {
    if (this.#closed !== undefined) return Promise.reject(new ControllerClosedError());
    if (typeof options !== 'object' || options === null) {
      return Promise.reject(new InvalidArgumentError(`registerResponse options must be an object, got ${describe(options)}`));
    }
    const { correlationId, message, overwrite = false } = options;
    if (typeof overwrite !== 'boolean') {
      return Promise.reject(new InvalidArgumentError(`overwrite must be a boolean, got ${describe(overwrite)}`));
    }
    const invalid = idError(correlationId, 'correlationId', this.#options.maxIdLength);
    if (invalid !== undefined) return Promise.reject(invalid);
    return this.#route(correlationId, message, overwrite, true);
  }

  /**
   * Creates an exchange, runs `operation` with it (inside `exchange.run()`
   * with the `bindCurrentExchange` option), waits for its replies and
   * resolves with the result. The exchange always
   * ends: when `operation` throws, it is closed with the error as reason,
   * its unanswered IDs are tagged, and the error is rethrown.
   *
   * @example
   * ```ts
   * import { Controller } from 'rrxc';
   *
   * type Part = { sku: string };
   * declare function publish(part: Part, correlationId: string): Promise<void>; // your transport
   *
   * const controller = new Controller<Part, { reserved: boolean }>();
   * const parts: Part[] = [{ sku: 'a' }, { sku: 'b' }];
   * const result = await controller.synchronize({ timeout: 2_000 }, async (xc) => {
   *   for (const part of parts) {
   *     const { correlationId } = xc.registerRequest({ message: part });
   *     await publish(part, correlationId);
   *   }
   * });
   * if (!result.complete) console.log('rolled back:', result.unanswered);
   * ```
   */
  // Not async, as request(): an async wrapper would make one more promise, adopted turns later.
  synchronize(options: SynchronizeOptions | undefined, operation: (exchange: Exchange<Req, Res>) => unknown): Promise<ExchangeResult<Req, Res>> {
    if (typeof operation !== 'function') {
      return Promise.reject(new InvalidArgumentError(`synchronize needs an operation function, got ${describe(operation)}`));
    }
    return this.#operate(options, this.#options.bindCurrentExchange ? (xc) => xc.run(() => operation(xc)) : operation);
  }

  /**
   * Sends one request and resolves with its reply: the commonest exchange,
   * in one call, as nats.js `request()` and rabbitmq-client's RPC `send()`
   * offer. The request is registered before `send` runs, so a reply that
   * beats `send`'s own promise is not lost. When the exchange ends first —
   * its timeout (the controller's, 30 s by default), its signal, `close()` —
   * it rejects with {@link ExchangeEndedError} (its `status` says which,
   * its `cause` the reason), after the ID is tagged for rollback. When
   * `send` throws, the exchange is closed with the error, the ID tagged,
   * and the error rethrown.
   *
   * @param message - The request, kept in the result as `synchronize()` does.
   * @param send - Puts the request on the wire, stamped with `correlationId`.
   * @param options - The exchange's `signal`, `timeout` and `id`, and the request's `correlationId`.
   * @returns The reply.
   * @throws {@link InvalidArgumentError} (as a rejection) for bad options or a `send` that is not a function.
   * @throws {@link ExchangeEndedError} (as a rejection) when the exchange ended before the reply came.
   *
   * @example
   * ```ts
   * import amqp from 'amqplib';
   * import { Controller } from 'rrxc';
   *
   * type Job = { text: string };
   * const controller = new Controller<Job, { upper: string }>();
   * const channel = await (await amqp.connect('amqp://127.0.0.1')).createChannel();
   * const job: Job = { text: 'hello' };
   * const answer = await controller.request(job, (correlationId) => {
   *   channel.sendToQueue('jobs', Buffer.from(JSON.stringify(job)), { correlationId, replyTo: 'replies' });
   * }, { timeout: 5_000 });
   * ```
   */
  request(message: Req, send: (correlationId: string, message: Req) => unknown, options?: RequestOptions): Promise<Res> {
    let checked: RequestOptions;
    try {
      if (typeof send !== 'function') throw new InvalidArgumentError(`request needs a send function, got ${describe(send)}`);
      checked = checkOptionsObject(options, 'request options', REQUEST_KEYS) as RequestOptions;
    } catch (error) {
      return Promise.reject(error);
    }
    const { correlationId, carrier, ...exchangeOptions } = checked;
    let handle!: RequestHandle<Res>;
    // Chained, not awaited: every await and async return is a turn of the microtask queue per request.
    return this.#operate(exchangeOptions, (xc) => {
      const request: RegisterRequestOptions<Req> = { message };
      if (correlationId !== undefined) request.correlationId = correlationId;
      if (carrier !== undefined) request.carrier = typeof carrier === 'function' ? carrier() : carrier;
      handle = xc.registerRequest(request);
      return send(handle.correlationId, message);
    }).then((result) => {
      // The reply from the result: `handle.response` would be made now, only to be adopted.
      // (A hook may have registered requests of its own in the exchange: find this one.)
      const { entries } = result;
      const own = entries.length === 1 ? entries[0]! : entries.find((e) => e.correlationId === handle.correlationId)!;
      return own.answered ? (own.response as Res) : handle.response;
    });
  }

  /**
   * Puts `tag` on `id` for `ttl` ms (default `rollbackTtl`; `0`: no expiry).
   * Tagging again replaces the TTL.
   */
  async tag(id: string, tag: string, options?: TagOptions): Promise<void> {
    this.#checkTagArguments(id, tag);
    const { ttl = this.#options.rollbackTtl } = checkOptionsObject(options, 'tag options', TAG_KEYS) as TagOptions;
    checkTtl('ttl', ttl);
    await this.#callStore('tag', () => this.#tagStore.tag(id, tag, ttl));
  }

  /** Removes `tag` from `id`; resolves whether it was there. */
  async untag(id: string, tag: string): Promise<boolean> {
    this.#checkTagArguments(id, tag);
    return this.#callStore('untag', () => this.#tagStore.untag(id, tag));
  }

  /**
   * Whether `id` carries every one of `tags`; with no tags given, whether it
   * carries no tag at all.
   */
  async hasTag(id: string, ...tags: string[]): Promise<boolean> {
    this.#checkTagArguments(id, ...tags);
    const live = await this.#liveTags(id);
    return tags.length === 0 ? live.length === 0 : tags.every((t) => live.includes(t));
  }

  /**
   * Settles `id` once, in the tag store every instance shares: adds `tag`
   * unless `id` carries a live tag among `tag` and `options.rivals`. Of
   * concurrent claims on one ID, on any instance, exactly one wins. The
   * integrations claim their compensated tag this way before compensating.
   *
   * @returns `undefined` when this call won; otherwise the live tag that held the claim.
   * @throws {@link TagStoreError} (as a rejection) when the store fails or does not answer within `storeTimeout`: the claim may or may not have been recorded.
   */
  async claim(id: string, tag: string, options?: ClaimOptions): Promise<string | undefined> {
    const { ttl = this.#options.rollbackTtl, rivals = [] } = checkOptionsObject(options, 'claim options', CLAIM_KEYS) as ClaimOptions;
    if (!Array.isArray(rivals)) throw new InvalidArgumentError(`rivals must be an array of tags, got ${describe(rivals)}`);
    this.#checkTagArguments(id, tag, ...rivals);
    checkTtl('ttl', ttl);
    return this.#callStore('claim', () => this.#tagStore.claim(id, tag, ttl, rivals));
  }

  /** Whether `id` carries the rollback tag: its exchange ended before the reply came. */
  async isRolledBack(id: string): Promise<boolean> {
    return this.hasTag(id, this.#options.rollbackTag);
  }

  /**
   * The open exchange that registered `correlationId`.
   * @throws {@link InvalidArgumentError} for an ID that is not a non-empty string of at most `maxIdLength` characters.
   */
  getExchange(correlationId: string): Exchange<Req, Res> | undefined {
    return this.#lookUp(correlationId)?.owner;
  }

  /**
   * Whether a request is registered under `correlationId` in an open exchange.
   * @throws {@link InvalidArgumentError} for an ID that is not a non-empty string of at most `maxIdLength` characters.
   */
  hasRequest(correlationId: string): boolean {
    return this.#lookUp(correlationId) !== undefined;
  }

  /**
   * Milliseconds since the request under `correlationId` was registered; `undefined` if none is.
   * @throws {@link InvalidArgumentError} for an ID that is not a non-empty string of at most `maxIdLength` characters.
   */
  requestAge(correlationId: string): number | undefined {
    const entry = this.#lookUp(correlationId);
    return entry === undefined ? undefined : this.#options.clock.now() - this.#epoch - entry.requestedAt;
  }

  /**
   * The exchange whose `run(fn)` (or `synchronize` operation) the caller is
   * inside, through `AsyncLocalStorage`.
   */
  currentExchange(): Exchange<Req, Res> | undefined {
    return this.#storage.getStore();
  }

  /**
   * Ends every open exchange with status `closed`, tags their unanswered IDs,
   * stops every timer and listener, and releases the backplane and the
   * in-memory tag store. Resolves once the rollback tags are written.
   * Idempotent: later calls return the same promise. Afterwards every method
   * that takes work — `createExchange`, `synchronize`, `newCorrelationId`,
   * `registerResponse`, the tag methods — throws or rejects with
   * {@link ControllerClosedError}; the read-only look-ups answer as for a
   * controller with nothing open.
   *
   * `onRollback` hooks it triggers are started, not awaited: they belong to
   * the application, and awaiting them here would deadlock a hook that
   * itself awaits `close()`.
   *
   * @param reason - Passed to every exchange's `close(reason)`.
   */
  close(...reason: [reason?: unknown]): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    // Closed first, so that hooks and listeners that re-enter see a closed
    // controller and a second close() gets this same promise.
    let release!: (done: Promise<void>) => void;
    this.#closed = new Promise<void>((resolve) => (release = resolve));
    try {
      this.#endAll((exchange) => exchange.close(...reason));
      this.#host.deadlines.clear();
    } catch (error) {
      // Only an injected clock that throws gets here: close()
      // must settle, and say why, rather than hang.
      release(Promise.reject(error));
      return this.#closed;
    }
    release(this.#release());
    return this.#closed;
  }

  /** Same as `close()`: `await using controller = new Controller()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Ends every open exchange with `end`. Ending one runs hooks and listeners
   * that may end others (ending twice does nothing) or open new ones, which
   * the next pass ends.
   */
  #endAll(end: (exchange: Exchange<Req, Res>) => void): void {
    while (this.#open.size > 0) for (const exchange of this.#open.members()) end(exchange);
  }

  async #release(): Promise<void> {
    // A hook or listener that ran during the ends may have started more.
    await this.#rollback.drain();
    this.#rollback.stop();
    this.#answered.clear();
    await this.#options.backplane?.close();
    if (this.#ownsTagStore) await this.#tagStore.close?.();
  }

  #route(correlationId: string, message: Res, overwrite: boolean, mayForward: boolean): Promise<ResponseOutcome> {
    const outcome = this.#routeLocally(correlationId, message, overwrite, !mayForward);
    if (outcome !== undefined) return SETTLED[outcome];
    // Another copy is being recorded for delivery: this one is told what became of it.
    const holding = this.#holding.size === 0 ? undefined : this.#holding.get(correlationId);
    if (holding !== undefined) return this.#afterHold(holding, () => this.#route(correlationId, message, overwrite, mayForward));
    // An exchange of this controller ended with this ID unanswered and its
    // rollback claim is not settled: the claim decides, not the store's
    // state before it.
    const deciding = this.#rollback.pendingDecision(correlationId);
    if (deciding === undefined) return this.#routeMiss(correlationId, message, overwrite, mayForward);
    return deciding.then((decision) => {
      const decided: ResponseOutcome = decision === 'committed' ? 'committed' : 'rolled-back';
      this.#publishOutcome(correlationId, decided, !mayForward);
      return decided;
    });
  }

  /**
   * A forwarded reply that the backplane records before it is handed over
   * (see {@link BackplaneRouter.route}): held in its exchange while
   * `record()` runs, then delivered — or, refused, the request waits again.
   */
  #routeHeld(correlationId: string, message: Res, overwrite: boolean, record: () => Promise<ResponseOutcome | undefined>): Promise<ResponseOutcome> {
    const entry = this.#index.get(correlationId);
    if (entry?.held === true) return this.#afterHold(this.#holding.get(correlationId)!, () => this.#routeHeld(correlationId, message, overwrite, record));
    if (entry === undefined || !entry.pending || this.#options.backplane?.checkLease?.() === false) return this.#route(correlationId, message, overwrite, false);
    const exchange = entry.owner;
    exchange.hold(entry);
    let recording: Promise<ResponseOutcome | undefined>;
    try {
      recording = record();
    } catch (error) {
      exchange.release(entry);
      return Promise.reject(error);
    }
    const settled = recording.then(
      (refused): ResponseOutcome => {
        if (refused !== undefined) {
          exchange.release(entry);
          this.#publishOutcome(correlationId, refused, true);
          return refused;
        }
        if (entry.held) exchange.deliverHeld(entry, message);
        else {
          // Closed meanwhile, the exchange left it undecided: delivered is
          // what the backplane recorded, and a later copy is a duplicate.
          this.#answered.add(correlationId, this.#options.clock.now() - this.#epoch);
          this.#publishOutcome(correlationId, 'delivered', true);
        }
        return 'delivered';
      },
      (error: unknown) => {
        exchange.release(entry);
        throw error;
      },
    );
    this.#holding.set(correlationId, settled);
    const done = (): void => {
      if (this.#holding.get(correlationId) === settled) this.#holding.delete(correlationId);
    };
    settled.then(done, done);
    return settled;
  }

  /** Routes a copy again once the copy held before it settled, whichever way (`unmatched` once the controller closed). */
  #afterHold(holding: Promise<ResponseOutcome>, again: () => Promise<ResponseOutcome>): Promise<ResponseOutcome> {
    const retry = (): Promise<ResponseOutcome> => (this.#closed === undefined ? again() : SETTLED.unmatched);
    return holding.then(retry, retry);
  }

  /**
   * Publishes `outcome` on its channel.
   * @param forwarded - Whether another instance forwarded the reply here (and publishes it too).
   * @param exchange - The exchange the reply went to, when it is open here.
   */
  #publishOutcome(correlationId: string, outcome: ResponseOutcome, forwarded: boolean, exchange?: Exchange<Req, Res>): void {
    const channel = responseChannels[outcome];
    if (!channel.hasSubscribers) return;
    const message: { -readonly [K in keyof ResponseMessage]: ResponseMessage[K] } = { controller: this, correlationId, outcome };
    if (forwarded) message.forwarded = true;
    if (exchange !== undefined) {
      message.exchange = exchange;
      const carrier = exchange.carrierOf(correlationId);
      if (carrier !== undefined) message.requestCarrier = carrier;
    }
    channel.publish(message);
  }

  /** What can be decided in memory, without a store or a backplane; published as decided. */
  #routeLocally(correlationId: string, message: Res, overwrite: boolean, forwarded: boolean): ResponseOutcome | undefined {
    const entry = this.#index.get(correlationId);
    let outcome: ResponseOutcome;
    if (entry !== undefined) {
      const exchange = entry.owner;
      if (entry.pending) {
        // Published by the exchange's host.delivered, before a completed end.
        if (this.#options.backplane?.checkLease?.() !== false) {
          exchange.deliver(entry, message, forwarded);
          return 'delivered';
        }
        // Fenced: the backplane abandoned this instance's exchanges, so the
        // reply came after its exchange ended unanswered and its ID was
        // tagged. (Had it failed to end this one, leave the reply to the
        // backplane rather than deliver it.)
        if (entry.pending) return undefined;
        outcome = 'rolled-back';
      } else if (entry.held) {
        // A forwarded copy is being recorded for delivery: what becomes of it decides (see #route).
        return undefined;
      } else if (!overwrite) {
        this.#publishOutcome(correlationId, 'duplicate', forwarded, exchange);
        return 'duplicate';
      } else {
        exchange.overwrite(entry, message);
        this.#publishOutcome(correlationId, 'overwritten', forwarded, exchange);
        return 'overwritten';
      }
    } else if (this.#answered.has(correlationId)) outcome = 'duplicate';
    else return undefined;
    this.#publishOutcome(correlationId, outcome, forwarded);
    return outcome;
  }

  /**
   * A reply not pending here. With a backplane it goes straight to the owner,
   * which looks up its own tags (and the backplane settles IDs nobody owns):
   * checking the shared store here first would cost every forwarded reply a
   * round trip.
   */
  async #routeMiss(correlationId: string, message: Res, overwrite: boolean, mayForward: boolean): Promise<ResponseOutcome> {
    const { backplane } = this.#options;
    const outcome =
      mayForward && backplane !== undefined ? await backplane.forward(correlationId, message, overwrite) : this.#settledBy(await this.#liveTags(correlationId));
    this.#publishOutcome(correlationId, outcome, !mayForward);
    return outcome;
  }

  /** The outcome of a reply no exchange holds, from the live tags of its ID. */
  #settledBy(tags: readonly string[]): ResponseOutcome {
    const { rollbackTag, committedTag } = this.#options;
    if (tags.includes(rollbackTag)) return 'rolled-back';
    return tags.includes(committedTag) ? 'committed' : 'unmatched';
  }

  #liveTags(id: string): Promise<readonly string[]> | readonly string[] {
    return this.#callStore('getTags', () => this.#tagStore.getTags(id));
  }

  #callStore<T>(operation: string, call: () => T | PromiseLike<T>): T | Promise<T> {
    if (this.#closed !== undefined) throw new ControllerClosedError();
    return this.#rollback.call(operation, call);
  }

  #checkExchangeOptions(options: CreateExchangeOptions | undefined): CreateExchangeOptions {
    if (this.#closed !== undefined) throw new ControllerClosedError();
    return checkExchangeOptions(options, this.#options.maxIdLength);
  }

  /**
   * Makes an exchange and runs `operation` with it, made and started in one
   * traced step, so the operation runs in the context a tracer binds to the
   * exchange; resolves with the exchange's result. When the operation
   * throws or rejects, the exchange is closed with the error, its IDs
   * tagged, and the error rethrown. An operation that returns no promise
   * (a send that only publishes) costs no promise of its own: the
   * exchange's `wait()` is the one answered.
   */
  #operate(options: CreateExchangeOptions | undefined, operation: (exchange: Exchange<Req, Res>) => unknown): Promise<ExchangeResult<Req, Res>> {
    let exchange: Exchange<Req, Res> | undefined;
    let returned: unknown;
    try {
      returned = this.#traced(this.#checkExchangeOptions(options), (made) => {
        exchange = made;
        return operation(made);
      });
    } catch (error) {
      return exchange === undefined ? Promise.reject(error) : failed(exchange, error);
    }
    const made = exchange!;
    if (!isThenable(returned)) return made.wait();
    return Promise.resolve(returned).then(
      () => made.wait(),
      (error: unknown) => failed(made, error),
    );
  }

  /**
   * Makes an exchange and runs `start` with it: the synchronous part of its
   * operation, if any. With subscribers on the tracing channel, that is the
   * `start`…`end` of the exchange's trace (`start` runs in the stores a
   * tracer binds), and the exchange publishes the rest as it ends.
   */
  #traced<T>({ signal, timeout, id }: CreateExchangeOptions, start: (exchange: Exchange<Req, Res>) => T): T {
    const exchange = new Exchange(this.#host, id ?? ++this.#exchanges, timeout ?? this.#options.timeout, signal);
    if (!exchangeTracing.hasSubscribers) return start(exchange);
    const trace: ExchangeTraceContext = { controller: this, exchange };
    // Not traceSync(): it would set `result` to what `start` returns, where
    // `result` is the exchange's own, as the asynchronous events report it.
    try {
      return exchangeTracing.start.runStores(trace, () => {
        exchange.trace(trace);
        return start(exchange);
      });
    } finally {
      exchangeTracing.end.publish(trace);
    }
  }

  /** The request pending under an ID given by the application, checked first. */
  #lookUp(correlationId: string): Entry<Req, Res> | undefined {
    checkId(correlationId, 'correlationId', this.#options.maxIdLength);
    return this.#index.get(correlationId);
  }

  #checkTagArguments(id: string, ...tags: string[]): void {
    if (this.#closed !== undefined) throw new ControllerClosedError();
    const { maxIdLength } = this.#options;
    checkId(id, 'id', maxIdLength);
    for (const tag of tags) checkId(tag, 'tag', maxIdLength);
  }

  #register(exchange: Exchange<Req, Res>, given: string | undefined, message: Req | undefined, now: number): Entry<Req, Res> {
    const index = this.#index;
    if (given !== undefined) {
      const entry: Entry<Req, Res> = new PendingRequest(given, message, exchange, now);
      index.add(given, entry);
      this.#rollback.startClean(given);
      return entry;
    }
    // Nothing that can throw may come between claiming an ID and adding it.
    const id = index.claimId();
    const entry: Entry<Req, Res> = new PendingRequest(id, message, exchange, now);
    index.addClaimed(id, entry);
    return entry;
  }

  #registered(exchange: Exchange<Req, Res>, entry: Entry<Req, Res>): void {
    const correlationId = entry.correlationId;
    this.#options.backplane?.requestRegistered?.(correlationId, exchange.deadline);
    if (requestRegisteredChannel.hasSubscribers) {
      const carrier = exchange.carrierOf(correlationId);
      requestRegisteredChannel.publish((carrier === undefined ? { controller: this, exchange, correlationId } : { controller: this, exchange, correlationId, carrier }) satisfies RequestMessage);
    }
  }

  #created(exchange: Exchange<Req, Res>): void {
    this.#open.add(exchange);
    if (exchangeCreatedChannel.hasSubscribers) exchangeCreatedChannel.publish({ controller: this, exchange } satisfies ExchangeMessage);
  }

  /**
   * Everything that follows the end of an exchange, in one place and in
   * this order: its requests leave the index and answered IDs enter the
   * duplicate window, the backplane is told, the rollback tags are written
   * (or marked as being written), and only then is the end published — a
   * subscriber that registers a late reply must find it rolled back.
   *
   * @param last - The exchange's last request; its list is circular.
   * @param endedAt - When it ended, relative to the epoch.
   * @returns A promise when the rollback tags are written asynchronously.
   */
  #ended(exchange: Exchange<Req, Res>, last: Entry<Req, Res> | undefined, result: ExchangeResult<Req, Res>, endedAt: number): PromiseLike<void> | undefined {
    const { backplane } = this.#options;
    // What the backplane is told was answered here: not the replies it recorded itself.
    const answered: string[] | undefined = backplane?.requestsEnded === undefined ? undefined : [];
    if (last !== undefined) for (let e = last.next!; ; e = e.next!) {
      if (answered !== undefined && e.answered && !e.recorded) answered.push(e.correlationId);
      this.#forget(e, endedAt);
      if (e === last) break;
    }
    this.#open.delete(exchange);
    if (answered !== undefined) backplane!.requestsEnded!(answered, result.unanswered);
    if (result.unanswered.length === 0) {
      this.#publishEnded(exchange, result);
      return undefined;
    }
    const claiming = this.#rollback.claimUnanswered(exchange, result);
    if (claiming === undefined) {
      this.#claimed(exchange, result);
      return undefined;
    }
    return claiming.then(() => this.#claimed(exchange, result));
  }

  /** The rollback claims of an ended exchange are settled and its result sorted by them. */
  #claimed(exchange: Exchange<Req, Res>, result: ExchangeResult<Req, Res>): void {
    this.#publishEnded(exchange, result);
    this.#rollback.runHook(result);
  }

  #publishEnded(exchange: Exchange<Req, Res>, result: ExchangeResult<Req, Res>): void {
    if (exchangeEndedChannel.hasSubscribers) {
      exchangeEndedChannel.publish({ controller: this, exchange, result } satisfies ExchangeEndedMessage);
    }
  }

  /**
   * Takes an ended exchange's request out of the index. An answered ID is
   * remembered for the duplicate window; an unanswered one is forgotten as
   * answered, should an earlier exchange have used it: that answer must not
   * hide its rollback tag.
   */
  #forget(entry: Entry<Req, Res>, endedAt: number): void {
    const slot = this.#index.release(entry);
    const id = entry.correlationId;
    // An ID made fresh for its slot: no earlier exchange can have used it.
    if (slot >= 0) {
      if (entry.answered) this.#answered.addGenerated(id, slot, endedAt);
    } else if (entry.answered) this.#answered.add(id, endedAt);
    else this.#answered.delete(id, endedAt);
  }
}

/**
 * Outcomes decided without waiting, as settled promises made once: the
 * routing fast path allocates no promise of its own.
 */
const SETTLED: Readonly<Record<ResponseOutcome, Promise<ResponseOutcome>>> = {
  delivered: Promise.resolve('delivered'),
  duplicate: Promise.resolve('duplicate'),
  overwritten: Promise.resolve('overwritten'),
  'rolled-back': Promise.resolve('rolled-back'),
  committed: Promise.resolve('committed'),
  unmatched: Promise.resolve('unmatched'),
};

function returnExchange<E>(exchange: E): E {
  return exchange;
}

/** An operation threw or rejected: its exchange is closed with the error, which is rethrown once the IDs are tagged. */
function failed<Req, Res>(exchange: Exchange<Req, Res>, error: unknown): Promise<never> {
  exchange.close(error);
  return exchange.wait().then(() => {
    throw error;
  });
}
