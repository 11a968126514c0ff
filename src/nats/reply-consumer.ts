import { createInbox, ErrorCode, headers as createHeaders, NatsError, type Msg, type MsgHdrs, type NatsConnection, type Payload } from 'nats';
import { describe, describeCause } from '../_describe.js';
import { checkBoolean, checkFunction, checkOptionsObject, optionKeys } from '../_validate.js';
import type { Controller } from '../controller.js';
import { InvalidArgumentError } from '../errors.js';
import type { Exchange } from '../exchange.js';
import { createReplyHandler, type ReplyDecision, type ReplyHandlerOptions } from '../integrations/index.js';
import { REQUEST_KEYS, type RequestOptions } from '../options.js';
import { NATS_CORRELATION_HEADER, NATS_REQUEUE_HEADER, natsReplyFields } from './reply-fields.js';

/**
 * Options of {@link consumeNatsReplies}: those of
 * {@link "rrxc/integrations"!createReplyHandler} — the compensation, the
 * `unmatched` policy, `maxRequeues`, `overwrite`, and `getCorrelationId` or
 * `getPayload` should the defaults of {@link natsReplyFields} not fit — and
 * the consumer's own. There is no `getRequeues`: the consumer writes the
 * requeue count ({@link NATS_REQUEUE_HEADER}), so it alone reads it, and
 * the `maxRequeues` bound holds.
 *
 * @typeParam Req - Type of the request messages (the controller's `Req`).
 * @typeParam Res - Type of the reply messages (the controller's `Res`).
 */
export interface ConsumeNatsRepliesOptions<Req, Res> extends Omit<ReplyHandlerOptions<Msg, Res>, 'getRequeues'> {
  /**
   * The inbox: replies come to `<inbox>.<correlationId>`. A subject without
   * wildcards that no other subscriber uses.
   * @defaultValue nats.js `createInbox()`: `_INBOX.<nuid>`
   */
  inbox?: string;
  /**
   * Encodes the request message for {@link NatsReplyConsumer.request}.
   * @defaultValue `JSON.stringify`
   */
  encode?: (message: Req) => Payload;
  /**
   * Read the correlation ID from this header instead of the reply subject,
   * for replies that do not come to `<inbox>.<correlationId>` (a worker
   * that answers elsewhere and names the ID in
   * {@link NATS_CORRELATION_HEADER}). Not together with `getCorrelationId`.
   * A no-responders status is matched by its subject all the same.
   * @defaultValue none: the last token of the subject
   */
  header?: string;
  /**
   * Stamp {@link NATS_CORRELATION_HEADER} with the correlation ID on every
   * request that {@link NatsReplyConsumer.request} and
   * {@link NatsReplyConsumer.publish} send, besides the reply subject: for
   * a worker that answers somewhere else than `msg.reply` (another
   * service, a stream) and names the ID there. Off, the reply subject
   * alone carries the ID (its last token: `msg.reply` is
   * `<inbox>.<correlationId>`), and a request goes out without headers
   * unless it was given some — about 45 bytes and a header block less per
   * request.
   * @defaultValue `true` when `header` is given (the replies name the ID in a header, so their workers are taken to read it from the request), `false` otherwise
   */
  correlationHeader?: boolean;
  /**
   * Told every decision, with the message it is about, after it was
   * applied: the place to keep a dead letter, since core NATS has none.
   * A `requeue` decided while {@link NatsReplyConsumer.close} runs, or
   * after the connection closed, comes here as `dead-letter`: it was not
   * republished, as nobody would be left to receive it.
   */
  onDecision?: (decision: ReplyDecision<Res>, message: Msg) => void;
  /**
   * Told what went wrong outside a decision: a requeue that could not be
   * published, an `onDecision` that threw, an error of the subscription
   * itself or of ending the exchanges when the connection closed (then
   * without a message).
   * @defaultValue a process warning (`RrxcConsumerWarning`)
   */
  onError?: (error: unknown, message: Msg | undefined) => void;
}

/** Options of {@link NatsReplyConsumer.publish}. */
export interface NatsPublishOptions {
  /**
   * Headers to send with the request (nats.js `headers()`); they are not
   * changed. With {@link ConsumeNatsRepliesOptions.correlationHeader} on,
   * a copy goes out, {@link NATS_CORRELATION_HEADER} set in it.
   */
  headers?: MsgHdrs;
}

/** Options of {@link NatsReplyConsumer.request}: the exchange's and the request's, as for `controller.request()`, and the headers. */
export interface NatsRequestOptions extends RequestOptions, NatsPublishOptions {}

/**
 * A running NATS reply consumer: one subscription to `<inbox>.*` that
 * routes every reply, ends the exchange of a request the server reports no
 * responders for, and ends the exchanges it waits on when the connection
 * closes.
 *
 * @typeParam Req - Type of the request messages.
 * @typeParam Res - Type of the reply messages.
 */
export interface NatsReplyConsumer<Req, Res> extends AsyncDisposable {
  /** The inbox; replies come to `<inbox>.<correlationId>`. */
  readonly inbox: string;
  /** Replies being handled right now. */
  readonly inFlight: number;
  /**
   * The reply subject of a request: `<inbox>.<correlationId>`, for a
   * request published some other way (a JetStream publish). The exchange
   * that registered `correlationId`, if one is open, counts as waiting on
   * this consumer from then on: it ends when the connection closes.
   * @throws {@link rrxc!InvalidArgumentError} for an ID that is not a subject token.
   */
  replyTo(correlationId: string): string;
  /**
   * Publishes a request whose reply comes back here: `reply` is
   * {@link NatsReplyConsumer.replyTo}, whose last token is the ID (and
   * {@link NATS_CORRELATION_HEADER} carries it too when the consumer's
   * `correlationHeader` is on). Register the request first (`exchange.registerRequest()`);
   * should the server find no subscriber for `subject`, its exchange ends
   * at once with status `closed`, the ID tagged for rollback, and its
   * `response` rejects with an {@link rrxc!ExchangeEndedError} whose `cause` is
   * a nats.js `NatsError` of code `ErrorCode.NoResponders` (`"503"`) —
   * instead of waiting for its timeout. Should the connection close first,
   * the exchange ends the same way, the `cause` a `NatsError` of code
   * `ErrorCode.ConnectionClosed` (`"CONNECTION_CLOSED"`).
   *
   * @param subject - Where the workers listen.
   * @param payload - The encoded request.
   * @param correlationId - The registered request's ID; it must be a subject token (no `.`, `*`, `>` or whitespace), as generated IDs are.
   * @param options - Headers to send.
   * @throws {@link rrxc!InvalidArgumentError} for a bad subject, ID or option, after `close()`, or once the connection closed (its `cause` the `NatsError` `CONNECTION_CLOSED`).
   */
  publish(subject: string, payload: Payload, correlationId: string, options?: NatsPublishOptions): void;
  /**
   * One request and its reply in one call, as nats.js `request()`: a
   * `controller.request()` whose send is {@link NatsReplyConsumer.publish} of
   * the encoded message. A subject nobody subscribes to rejects at once, and
   * so does every request still waiting when the connection closes.
   *
   * @param subject - Where the workers listen.
   * @param message - The request; encoded by the consumer's `encode`.
   * @param options - The exchange's `signal`, `timeout` and `id`, the request's `correlationId`, headers to send.
   * @returns The reply.
   * @throws {@link rrxc!ExchangeEndedError} (as a rejection) when the exchange ended before the reply came; after no responders or a closed connection its `status` is `closed` and its `cause` the `NatsError` (`503`, `CONNECTION_CLOSED`).
   * @throws {@link rrxc!InvalidArgumentError} (as a rejection, before any exchange opens) for a bad subject or option, after `close()`, or once the connection closed (its `cause` the `NatsError` `CONNECTION_CLOSED`).
   */
  request(subject: string, message: Req, options?: NatsRequestOptions): Promise<Res>;
  /**
   * Stops consuming and resolves once every reply already received is
   * decided (drains the subscription: the server gets the unsubscribe, and
   * what it sent before arrives and is handled). Idempotent. Call it before
   * `controller.close()` so that no reply meets a closed controller.
   *
   * Nothing is requeued meanwhile: a republished reply would find nobody
   * subscribed. A reply decided `requeue` (an `unmatched` one under the
   * `requeue` policy, a failed compensation) is decided `dead-letter`
   * instead, and `onDecision` is told so — where an application keeps its
   * dead letters, since core NATS has none.
   */
  close(): Promise<void>;
}

/**
 * Consumes the replies of NATS requests: subscribes to `<inbox>.*` and
 * routes each reply as {@link "rrxc/integrations"!consumeReplies} does for
 * amqplib — through a {@link "rrxc/integrations"!createReplyHandler} built
 * from `options` and {@link natsReplyFields}: `registerResponse`, a late
 * reply compensated once, a `requeue` republished with
 * {@link NATS_REQUEUE_HEADER} incremented (core NATS has no
 * acknowledgement: the other actions leave the message be, and
 * `onDecision` is where to keep a dead letter).
 *
 * A request ends at once, instead of at its timeout, when the server
 * answers "no responders" (a status message 503, which nats.js connections
 * ask for by default), and when the connection closes (nats.js
 * `connection.closed()`): every exchange with a request published through
 * this consumer (or given a {@link NatsReplyConsumer.replyTo}) is then
 * closed with a `NatsError` `CONNECTION_CLOSED` as its reason, its
 * unanswered IDs tagged for rollback.
 *
 * The correlation ID travels as the last token of the reply subject — as
 * in nats.js' own muxed requests — because the server's no-responders
 * status carries no header of the request, only its reply subject. A
 * request carries headers only when it is given some, or when
 * `correlationHeader` asks for {@link NATS_CORRELATION_HEADER}.
 *
 * @typeParam Req - Type of the request messages (the controller's `Req`).
 * @typeParam Res - Type of the reply messages (the controller's `Res`).
 * @param connection - A nats.js connection; the consumer never closes it.
 * @param controller - The controller whose exchanges wait for the replies.
 * @param options - See {@link ConsumeNatsRepliesOptions}.
 * @returns The running consumer, subscribed on the server; `close()` it on shutdown.
 * @throws {@link rrxc!InvalidArgumentError} (as a rejection) for a bad argument or option.
 *
 * @example
 * ```ts
 * import { connect } from 'nats';
 * import { Controller } from 'rrxc';
 * import { consumeNatsReplies } from 'rrxc/nats';
 *
 * interface Job { x: number }
 * interface Answer { double: number }
 * declare function refund(correlationId: string, answer: Answer): Promise<void>;
 *
 * const nc = await connect({ servers: '127.0.0.1:4222' });
 * const controller = new Controller<Job, Answer>();
 * const replies = await consumeNatsReplies(nc, controller, {
 *   compensate: (answer, { correlationId }) => refund(correlationId, answer),
 * });
 * // The worker needs nothing of rrxc: msg.respond() answers to <inbox>.<correlationId>.
 * nc.subscribe('jobs', { callback: (_, msg) => msg.respond(JSON.stringify({ double: 2 * msg.json<Job>().x })) });
 *
 * const answer = await replies.request('jobs', { x: 21 }, { timeout: 5_000 }); // { double: 42 }
 * await replies.close();
 * await controller.close();
 * await nc.close();
 * ```
 */
export async function consumeNatsReplies<Req, Res>(
  connection: NatsConnection,
  controller: Controller<Req, Res>,
  options?: ConsumeNatsRepliesOptions<Req, Res>,
): Promise<NatsReplyConsumer<Req, Res>> {
  if (typeof connection !== 'object' || connection === null || typeof connection.subscribe !== 'function' || typeof connection.publish !== 'function') {
    throw new InvalidArgumentError(`connection must be a nats.js NatsConnection, got ${describe(connection)}`);
  }
  if (typeof controller !== 'object' || controller === null || typeof controller.getExchange !== 'function' || typeof controller.request !== 'function') {
    throw new InvalidArgumentError(`controller must be an rrxc Controller, got ${describe(controller)}`);
  }
  const { inbox: givenInbox, encode: givenEncode, header, correlationHeader: givenCorrelationHeader, onDecision: givenOnDecision, onError: givenOnError, ...handlerOptions } = checkOptionsObject(
    options,
    'consumeNatsReplies options',
    CONSUME_KEYS,
  );
  const inbox = givenInbox === undefined ? createInbox() : checkSubject('inbox', givenInbox);
  const encode = checkFunction('encode', givenEncode) ?? encodeJson;
  const onDecision = checkFunction('onDecision', givenOnDecision);
  const onError = checkFunction('onError', givenOnError) ?? warn;
  const correlationHeader = givenCorrelationHeader === undefined ? header !== undefined : checkBoolean('correlationHeader', givenCorrelationHeader);
  if (header !== undefined && handlerOptions.getCorrelationId !== undefined) {
    throw new InvalidArgumentError('header and getCorrelationId both say where the correlation ID is: give one of them');
  }
  const fields = natsReplyFields<Res>(header === undefined ? undefined : { header });
  // Validates the handler's options (and the controller) once, before anything is subscribed.
  const handle = createReplyHandler<Res, Msg>(controller, {
    ...handlerOptions,
    getCorrelationId: handlerOptions.getCorrelationId ?? fields.getCorrelationId,
    getPayload: handlerOptions.getPayload ?? fields.getPayload,
    getRequeues: fields.getRequeues,
  });
  const prefix = `${inbox}.`;

  let closing: Promise<void> | undefined;
  /** Set once the connection closed: the reason every exchange still waiting here ends with. */
  let connectionClosed: NatsError | undefined;

  const report = (error: unknown, message: Msg | undefined): void => {
    try {
      onError(error, message);
    } catch (failure) {
      // The application's own reporter failed: warn rather than leave an unhandled rejection.
      warn(failure);
    }
  };

  /** Replies being handled; `idle` is told when the count falls to 0, for `close()`. */
  let inFlight = 0;
  let idle: (() => void) | undefined;

  /** Decides one reply; never rejects (what fails is reported). */
  const apply = async (message: Msg): Promise<void> => {
    try {
      let decision = await handle(message);
      if (decision.action === 'requeue') {
        // Nobody would receive a republished reply: the subscription is going or gone.
        if (closing !== undefined || connectionClosed !== undefined) decision = { ...decision, action: 'dead-letter' };
        else connection.publish(message.subject, message.data, { headers: copyHeaders(message.headers, NATS_REQUEUE_HEADER, String(decision.requeues + 1)) });
      }
      onDecision?.(decision, message);
    } catch (error) {
      report(error, message);
    } finally {
      if (--inFlight === 0 && idle !== undefined) {
        idle();
        idle = undefined;
      }
    }
  };

  /** The server found nobody for the request: its exchange ends now rather than at its timeout. */
  const noResponders = (message: Msg): void => {
    const correlationId = message.subject.slice(prefix.length);
    try {
      controller
        .getExchange(correlationId)
        ?.close(new NatsError(`no responders: nobody subscribes to the subject of request \`${correlationId}\``, ErrorCode.NoResponders));
    } catch (error) {
      report(error, message);
    }
  };

  const waiting = new WaitingExchanges<Exchange<Req, Res>>();

  const subscription = connection.subscribe(`${prefix}*`, {
    callback: (error, message) => {
      if (error !== null) return report(error, undefined);
      // As nats.js tells a request error: a status 503 without a payload.
      if (message.data.length === 0 && message.headers?.code === 503) return noResponders(message);
      inFlight++;
      void apply(message);
    },
  });
  try {
    // Once the server has the subscription, a request published on any connection has its reply received.
    await connection.flush();
  } catch (error) {
    subscription.unsubscribe();
    throw error;
  }

  // No reply can come any more: end the exchanges now rather than at their timeouts.
  connection.closed().then(
    (closedWith) => {
      connectionClosed = NatsError.errorForCode(ErrorCode.ConnectionClosed, closedWith instanceof Error ? closedWith : undefined);
      for (const exchange of waiting.drain()) {
        try {
          exchange.close(connectionClosed);
        } catch (error) {
          report(error, undefined);
        }
      }
    },
    (error: unknown) => report(error, undefined),
  );

  const checkOpen = (): void => {
    if (connectionClosed !== undefined) {
      throw new InvalidArgumentError(`the NATS reply consumer of ${inbox} is closed: its connection closed`, { cause: connectionClosed });
    }
    if (closing !== undefined) throw new InvalidArgumentError(`the NATS reply consumer of ${inbox} is closed: a reply would reach nobody`);
  };
  const replyTo = (correlationId: string): string => {
    const subject = prefix + checkToken(correlationId);
    if (connectionClosed === undefined) {
      const exchange = controller.getExchange(correlationId);
      if (exchange !== undefined) waiting.add(exchange);
    }
    return subject;
  };
  /** Sends a request to a subject already checked, with headers already checked. */
  const send = (subject: string, payload: Payload, correlationId: string, headers: MsgHdrs | undefined): void => {
    const reply = replyTo(correlationId);
    if (correlationHeader) connection.publish(subject, payload, { reply, headers: copyHeaders(headers, NATS_CORRELATION_HEADER, correlationId) });
    else if (headers !== undefined) connection.publish(subject, payload, { reply, headers: sendable(headers) });
    else connection.publish(subject, payload, { reply });
  };
  const publish = (subject: string, payload: Payload, correlationId: string, publishOptions?: NatsPublishOptions): void => {
    checkOpen();
    subjects.check(subject);
    const { headers } = checkOptionsObject(publishOptions, 'publish options', PUBLISH_KEYS);
    send(subject, payload, correlationId, checkHeaders(headers));
  };
  /**
   * The subjects requests went to, checked once each, with the `send` of
   * `controller.request()` for a request without headers: one function per
   * subject rather than a closure per request.
   */
  const subjects = new SubjectCache((subject) => (correlationId: string, message: Req) => send(subject, encode(message), correlationId, undefined));
  /** `request()` but for its rejection: throws what cannot be sent, before the exchange opens (so it is not tagged for rollback). */
  const startRequest = (subject: string, message: Req, requestOptions: NatsRequestOptions | undefined): Promise<Res> => {
    checkOpen();
    const sendTo = subjects.check(subject);
    if (requestOptions === undefined) return controller.request(message, sendTo, undefined);
    checkOptionsObject(requestOptions, 'request options', REQUEST_OPTION_KEYS);
    if (requestOptions.correlationId !== undefined) checkToken(requestOptions.correlationId);
    if (!('headers' in requestOptions)) return controller.request(message, sendTo, requestOptions);
    const { headers, ...rest } = requestOptions;
    if (checkHeaders(headers) === undefined) return controller.request(message, sendTo, rest);
    return controller.request(message, (correlationId, m) => send(subject, encode(m), correlationId, headers), rest);
  };

  return {
    inbox,
    get inFlight() {
      return inFlight;
    },
    replyTo,
    publish,
    // Not async: that would wrap controller.request()'s promise in one more,
    // adopted a few microtasks later, on every request.
    request(subject, message, requestOptions) {
      try {
        return startRequest(subject, message, requestOptions);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  };

  function close(): Promise<void> {
    closing ??= (async () => {
      try {
        if (!subscription.isClosed()) await subscription.drain();
      } catch (error) {
        // A connection closed meanwhile took the subscription with it.
        if (!connection.isClosed()) report(error, undefined);
      } finally {
        while (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
      }
    })();
    return closing;
  }
}

/**
 * The exchanges a consumer has requests out for, until they end. An ended
 * exchange is not told apart when it ends (a completed one aborts no
 * signal), so the ended ones are swept out whenever the list has doubled
 * since the last sweep: O(1) per request, amortised, and an ended exchange
 * is held at most until the next sweep. An array rather than a `Set`: it
 * is added to on every request, and a `Set` made the young-generation
 * collections twice as long (a client of 128 callers on a fake connection
 * spent a fifth more CPU per request). An exchange added twice in a row (a
 * synchronize() sending many requests) is listed once; one whose requests
 * go out between other exchanges' takes a slot per request until it ends,
 * and {@link WaitingExchanges.drain} lists it once.
 */
class WaitingExchanges<X extends { readonly state: string }> {
  #exchanges: X[] = [];
  #last: X | undefined;
  #sweepAt = SWEEP_MIN;

  add(exchange: X): void {
    if (exchange === this.#last) return;
    this.#last = exchange;
    const exchanges = this.#exchanges;
    if (exchanges.length >= this.#sweepAt) {
      let kept = 0;
      for (const x of exchanges) if (x.state !== 'ended') exchanges[kept++] = x;
      exchanges.length = kept;
      this.#sweepAt = Math.max(SWEEP_MIN, 2 * kept);
    }
    exchanges.push(exchange);
  }

  /** The exchanges not ended yet, each once, the list emptied. */
  drain(): X[] {
    const open = new Set(this.#exchanges.filter((x) => x.state !== 'ended'));
    this.#exchanges = [];
    this.#last = undefined;
    return [...open];
  }
}

const SWEEP_MIN = 64;

/**
 * The subjects checked so far, each with what {@link SubjectCache.check}'s
 * caller made of it, so that a subject is split and tested once rather
 * than on every request. Bounded: past {@link SUBJECTS_MAX} distinct
 * subjects it starts over, so one-off subjects (an ID in the subject) cost
 * what they did before and hold no memory.
 */
class SubjectCache<V> {
  readonly #make: (subject: string) => V;
  readonly #known = new Map<string, V>();

  constructor(make: (subject: string) => V) {
    this.#make = make;
  }

  /** What `make` made of `subject`, once `subject` is checked; throws for a subject one cannot publish to. */
  check(subject: unknown): V {
    let value = this.#known.get(subject as string);
    if (value === undefined) {
      const checked = checkSubject('subject', subject);
      if (this.#known.size >= SUBJECTS_MAX) this.#known.clear();
      value = this.#make(checked);
      this.#known.set(checked, value);
    }
    return value;
  }
}

const SUBJECTS_MAX = 256;

const CONSUME_KEYS = optionKeys<ConsumeNatsRepliesOptions<unknown, unknown>>({
  inbox: true,
  encode: true,
  header: true,
  correlationHeader: true,
  onDecision: true,
  onError: true,
  getCorrelationId: true,
  getPayload: true,
  unmatched: true,
  maxRequeues: true,
  compensate: true,
  compensatedTag: true,
  overwrite: true,
});
const PUBLISH_KEYS = optionKeys<NatsPublishOptions>({ headers: true });
const REQUEST_OPTION_KEYS = new Set([...REQUEST_KEYS, ...PUBLISH_KEYS]);

/** A subject token: what the server matches `*` against. */
const TOKEN = /^[^\s.*>]+$/;
/** A subject one can publish to: tokens separated by dots, no wildcard. */
const SUBJECT = /^[^\s.*>]+(?:\.[^\s.*>]+)*$/;

function checkToken(correlationId: unknown): string {
  if (typeof correlationId !== 'string' || !TOKEN.test(correlationId)) {
    throw new InvalidArgumentError(`a correlation ID sent over NATS must be a subject token (no ".", "*", ">" or whitespace), got ${describe(correlationId)}`);
  }
  return correlationId;
}

/** Throws unless `value` is a subject one can publish to: dot-separated tokens, no wildcard. */
function checkSubject(what: string, value: unknown): string {
  if (typeof value !== 'string' || !SUBJECT.test(value)) {
    throw new InvalidArgumentError(`${what} must be a NATS subject without wildcards, got ${describe(value)}`);
  }
  return value;
}

/** Throws unless `value` is headers (`MsgHdrs`: iterable, as nats.js `headers()` makes them) or undefined. */
function checkHeaders(value: unknown): MsgHdrs | undefined {
  if (value !== undefined && (typeof value !== 'object' || value === null || typeof (value as Partial<Iterable<unknown>>)[Symbol.iterator] !== 'function')) {
    throw new InvalidArgumentError(`headers must be nats.js headers (from \`headers()\`), got ${describe(value)}`);
  }
  return value as MsgHdrs | undefined;
}

/** Headers nats.js can send as they are: its own (they encode themselves); others are copied into such. */
function sendable(headers: MsgHdrs): MsgHdrs {
  return typeof (headers as { encode?: unknown }).encode === 'function' ? headers : copyHeaders(headers);
}

/** A copy of `from` (or new headers), with `name` set to `value` when given. */
function copyHeaders(from: MsgHdrs | undefined, name?: string, value?: string): MsgHdrs {
  const headers = createHeaders();
  if (from !== undefined) for (const [key, values] of from) for (const v of values) headers.append(key, v);
  if (name !== undefined) headers.set(name, value!);
  return headers;
}

function encodeJson(message: unknown): Payload {
  return JSON.stringify(message) ?? '';
}

function warn(error: unknown): void {
  process.emitWarning(`rrxc NATS reply consumer: ${describeCause(error)}`, 'RrxcConsumerWarning');
}
