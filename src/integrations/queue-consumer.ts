import { BatchedAcknowledgements } from './_acknowledgements.js';
import { InvalidArgumentError } from '../errors.js';
import { describe, describeCause } from '../_describe.js';
import type { ResponseOutcome } from '../types.js';
import { checkFunction, checkInteger, checkOptionsObject, optionKeys } from '../_validate.js';
import { checkString, checkTarget, classifyRouteError, CompensateOnce, parseJsonBody, readCorrelationId, withRouteDetails } from './_shared.js';
import { DEFAULT_COMPENSATED_TAG, type ReplyTarget } from './reply-target.js';

/** Default {@link ReplyHandlerOptions.maxRequeues}. */
export const DEFAULT_MAX_REQUEUES = 3;

/**
 * Header in which the requeue count of a reply travels. {@link consumeReplies}
 * republishes a requeued reply with this header incremented, and the default
 * {@link ReplyHandlerOptions.getRequeues} reads it, so that the bound holds on
 * any queue type — a broker's own `redelivered` flag cannot count.
 */
export const REQUEUE_HEADER = 'x-rrxc-requeues';

/**
 * The shape of a message as amqplib delivers it, as far as the defaults of
 * {@link createReplyHandler} read it: the correlation ID in
 * `properties.correlationId`, a JSON body in `content`, the requeue count in
 * the {@link REQUEUE_HEADER} header.
 */
export interface AmqpLikeMessage {
  /** The message body. */
  readonly content: Uint8Array;
  /** AMQP basic properties. */
  readonly properties: {
    /** The correlation ID the reply echoes. */
    readonly correlationId?: unknown;
    /** Application headers. */
    readonly headers?: Readonly<Record<string, unknown>> | undefined;
  };
}

/**
 * What a consumer must do with a reply message:
 *
 * | action | when | amqplib |
 * |---|---|---|
 * | `ack` | `delivered`, `duplicate`, `overwritten`, `committed`, `rolled-back` (after compensating) | `ack` |
 * | `requeue` | `unmatched` under the `requeue` policy, or a transient failure, while under `maxRequeues` | republish with the count incremented, then `ack` |
 * | `dead-letter` | `unmatched` under the `dead-letter` policy, or once `maxRequeues` is spent | `nack` without requeue (the queue's dead-letter exchange keeps it) |
 * | `drop` | `unmatched` under the `drop` policy | `ack` (discarded) |
 * | `reject` | a malformed message: no or a bad correlation ID, a body that does not parse | `nack` without requeue |
 */
export type ReplyAction = 'ack' | 'requeue' | 'dead-letter' | 'drop' | 'reject';

/**
 * What became of a reply: a {@link ResponseOutcome} of `registerResponse`,
 * `invalid` for a malformed message, or `failed` when routing or the
 * compensation threw (a closed controller, a failing tag store, a backplane
 * that could not tell the outcome, a throwing `compensate`).
 */
export type ReplyOutcome = ResponseOutcome | 'invalid' | 'failed';

/**
 * What to do with a well-formed reply nobody owns (`unmatched`):
 *
 * - `dead-letter`: keep it for inspection (the safe default: with one
 *   instance and no backplane, nobody will ever want it);
 * - `requeue`: put it back at most `maxRequeues` times, for another instance
 *   sharing the queue without a backplane, then dead-letter it;
 * - `drop`: acknowledge and forget it.
 */
export type UnmatchedPolicy = 'dead-letter' | 'requeue' | 'drop';

/** What {@link createReplyHandler}'s handler decided about one message. */
export interface ReplyDecision<Res> {
  /** What the consumer must do with the message. */
  readonly action: ReplyAction;
  /** Why. */
  readonly outcome: ReplyOutcome;
  /** The correlation ID read from the message; absent when there was none. */
  readonly correlationId?: string;
  /** The parsed reply; absent for a message that did not parse. */
  readonly payload?: Res;
  /** How often the message was requeued before this delivery. */
  readonly requeues: number;
  /** Whether the compensation ran for this message (`rolled-back` only). */
  readonly compensated: boolean;
  /** What went wrong, for `invalid` and `failed`. */
  readonly error?: unknown;
}

/** What {@link ReplyHandlerOptions.compensate} is told besides the payload. */
export interface CompensationContext<M> {
  /** The correlation ID of the late reply. */
  readonly correlationId: string;
  /** The message that carried it. */
  readonly message: M;
}

/**
 * Options of {@link createReplyHandler}. The three extractors default to the
 * amqplib shape ({@link AmqpLikeMessage}); for any other message type they
 * are required.
 *
 * @typeParam M - Type of the consumed messages.
 * @typeParam Res - Type of the reply payloads.
 */
export interface ReplyHandlerOptions<M, Res> {
  /**
   * Reads the correlation ID; a non-string, empty or over-long value makes
   * the message `invalid` (rejected). Throwing does too.
   * @defaultValue `msg.properties.correlationId`
   */
  getCorrelationId?: (message: M) => unknown;
  /**
   * Reads (and may validate) the reply; throwing makes the message `invalid`.
   * @defaultValue `JSON.parse` of `msg.content` as UTF-8
   */
  getPayload?: (message: M) => Res;
  /**
   * Reads how often the message was requeued. Requeueing must increase it,
   * or the bound cannot hold.
   * @defaultValue the {@link REQUEUE_HEADER} header, 0 when absent
   */
  getRequeues?: (message: M) => number;
  /**
   * What to do with an `unmatched` reply.
   * @defaultValue `"dead-letter"`
   */
  unmatched?: UnmatchedPolicy;
  /**
   * How often one message may be requeued (for `unmatched` under the
   * `requeue` policy, and after a transient failure) before it is
   * dead-lettered; `0`: never requeue.
   * @defaultValue 3
   */
  maxRequeues?: number;
  /**
   * Undoes the work of a request whose exchange ended before its reply came
   * (`rolled-back`): the payload tells what was done. Runs once per
   * correlation ID while its rollback tag lives, across every instance that
   * shares the tag store (it claims the compensated tag first); when it throws, the message
   * is requeued (bounded) or dead-lettered, so the compensation is retried
   * rather than lost.
   */
  compensate?: (payload: Res, context: CompensationContext<M>) => unknown;
  /**
   * Tag that marks an ID whose compensation ran.
   * @defaultValue `"compensated"`
   */
  compensatedTag?: string;
  /**
   * Passed to `registerResponse`: a second reply replaces the first
   * (`overwritten`) instead of being a `duplicate`.
   * @defaultValue false
   */
  overwrite?: boolean;
}

/**
 * Routes one consumed message and answers what to do with it. Never rejects:
 * every failure is a decision.
 */
export type ReplyHandler<M, Res> = (message: M) => Promise<ReplyDecision<Res>>;

/** Options of {@link createReplyHandler} for messages that are not amqplib-shaped: the extractors are required. */
export type CustomReplyHandlerOptions<M, Res> = ReplyHandlerOptions<M, Res> &
  Required<Pick<ReplyHandlerOptions<M, Res>, 'getCorrelationId' | 'getPayload' | 'getRequeues'>>;

/**
 * Wraps a queue consumer's message handling: reads the correlation ID and
 * the reply from a message, routes it with `registerResponse`, runs the
 * compensation for a late reply, and answers what the consumer must do with
 * the message — transport-agnostic, so it serves any queue client. For
 * amqplib, {@link consumeReplies} applies the decision for you.
 *
 * Nothing is ever requeued without bound: requeues are counted
 * (`getRequeues`) and capped by `maxRequeues`.
 *
 * @typeParam Res - Type of the reply payloads (the controller's `Res`).
 * @typeParam M - Type of the consumed messages; amqplib-shaped by default.
 * @param controller - The controller whose exchanges wait for the replies.
 * @param options - Extractors, the `unmatched` policy, the compensation.
 * @returns The handler: `message → Promise<ReplyDecision>`.
 * @throws {@link rrxc!InvalidArgumentError} for a bad controller or option.
 *
 * @example
 * ```ts
 * import amqp from 'amqplib';
 * import { Controller } from 'rrxc';
 * import { createReplyHandler } from 'rrxc/integrations';
 *
 * type Answer = { ok: boolean };
 * declare function refund(correlationId: string, answer: Answer): Promise<void>; // yours
 *
 * const controller = new Controller<unknown, Answer>();
 * const channel = await (await amqp.connect('amqp://127.0.0.1')).createChannel();
 * const handle = createReplyHandler(controller, {
 *   compensate: (answer, { correlationId }) => refund(correlationId, answer),
 * });
 * await channel.consume('replies', async (msg) => {
 *   if (msg === null) return;
 *   const decision = await handle(msg);
 *   if (decision.action === 'ack' || decision.action === 'drop') channel.ack(msg);
 *   else channel.nack(msg, false, false); // with consumeReplies, requeue is handled too
 * });
 * ```
 */
export function createReplyHandler<Res, M extends AmqpLikeMessage = AmqpLikeMessage>(
  controller: ReplyTarget<Res>,
  options?: ReplyHandlerOptions<M, Res>,
): ReplyHandler<M, Res>;
/**
 * Wraps the message handling of a consumer of any message type: see the
 * amqplib-shaped overload; here the extractors are required.
 *
 * @typeParam Res - Type of the reply payloads (the controller's `Res`).
 * @typeParam M - Type of the consumed messages.
 * @param controller - The controller whose exchanges wait for the replies.
 * @param options - The extractors, the `unmatched` policy, the compensation.
 * @returns The handler: `message → Promise<ReplyDecision>`.
 * @throws {@link rrxc!InvalidArgumentError} for a bad controller or option.
 *
 * @example
 * ```ts
 * import { Controller } from 'rrxc';
 * import { createReplyHandler } from 'rrxc/integrations';
 *
 * type Answer = { ok: boolean };
 * // A message of your queue client.
 * type Job = { correlationId: string; body: unknown; requeues: number };
 *
 * const controller = new Controller<unknown, Answer>();
 * const handle = createReplyHandler(controller, {
 *   getCorrelationId: (m: Job) => m.correlationId,
 *   getPayload: (m: Job) => m.body as Answer,
 *   getRequeues: (m: Job) => m.requeues,
 * });
 * ```
 */
export function createReplyHandler<Res, M>(controller: ReplyTarget<Res>, options: CustomReplyHandlerOptions<M, Res>): ReplyHandler<M, Res>;
export function createReplyHandler<Res, M>(controller: ReplyTarget<Res>, options?: ReplyHandlerOptions<M, Res>): ReplyHandler<M, Res> {
  const decide = replyDecider(controller, options);
  return (message: M) => decide(message, itself);
}

/**
 * Decides one message and resolves with what `done` makes of the decision
 * (told at once for a malformed message, else once routed and compensated).
 * Never rejects, as long as `done` does not throw.
 */
type Decide<M, Res> = <R>(message: M, done: (decision: ReplyDecision<Res>, message: M) => R) => Promise<R>;

/**
 * {@link createReplyHandler}'s work, applying the decision with `done`:
 * {@link consumeReplies} acknowledges in the routing's own continuation,
 * where awaiting the handler would cost every reply two more promises and
 * their microtask hops (the handler's and the consumer's), and a `.finally`
 * and a set entry to track them.
 */
function replyDecider<Res, M>(controller: ReplyTarget<Res>, options: ReplyHandlerOptions<M, Res> | undefined): Decide<M, Res> {
  checkTarget(controller);
  const given = checkOptionsObject(options, 'reply handler options', REPLY_HANDLER_KEY_SET);
  const getCorrelationId = checkFunction('getCorrelationId', given.getCorrelationId) ?? (amqpCorrelationId as (m: M) => unknown);
  const getPayload = checkFunction('getPayload', given.getPayload) ?? (amqpJsonPayload as (m: M) => Res);
  const getRequeues = checkFunction('getRequeues', given.getRequeues) ?? (amqpRequeues as (m: M) => number);
  const unmatched = given.unmatched ?? 'dead-letter';
  if (!UNMATCHED_POLICIES.includes(unmatched)) {
    throw new InvalidArgumentError(`unmatched must be one of ${UNMATCHED_POLICIES.join(', ')}, got ${describe(unmatched)}`);
  }
  const maxRequeues = checkInteger('maxRequeues', given.maxRequeues ?? DEFAULT_MAX_REQUEUES, 0);
  const compensatedTag = checkString('compensatedTag', given.compensatedTag ?? DEFAULT_COMPENSATED_TAG);
  const overwrite = given.overwrite === true;
  const compensator = new CompensateOnce<Res, CompensationContext<M>>(controller, checkFunction('compensate', given.compensate), compensatedTag);

  /** A requeue while under the bound, else the last resort. */
  const retry = (requeues: number): ReplyAction => (requeues < maxRequeues ? 'requeue' : 'dead-letter');

  // An async function rather than `.then` callbacks: V8 keeps an await's
  // state in the function's own frame, where callbacks would cost each
  // reply a context and two closures.
  return async <R>(message: M, done: (decision: ReplyDecision<Res>, message: M) => R): Promise<R> => {
    let requeues = 0;
    let correlationId: string | undefined;
    let payload: Res;
    try {
      requeues = readRequeues(getRequeues(message));
      correlationId = readCorrelationId('message', getCorrelationId(message));
      payload = getPayload(message);
    } catch (error) {
      return done(decision('reject', 'invalid', correlationId, undefined, requeues, false, error), message);
    }

    let outcome: ResponseOutcome;
    try {
      // The same shape every time (overwrite always present): one hidden class for the controller to read.
      outcome = await controller.registerResponse({ correlationId, message: payload, overwrite });
    } catch (error) {
      // A bad ID is the message's fault; anything else may pass (a retryable
      // failure surely, an unexpected one perhaps), so the message gets
      // another chance — a bounded one.
      if (classifyRouteError(error) === 'invalid') return done(decision('reject', 'invalid', correlationId, payload, requeues, false, error), message);
      return done(decision(retry(requeues), 'failed', correlationId, payload, requeues, false, error), message);
    }

    switch (outcome) {
      case 'rolled-back': {
        let compensated: boolean;
        try {
          compensated = await compensator.run(correlationId, payload, { correlationId, message });
        } catch (error) {
          return done(decision(retry(requeues), 'failed', correlationId, payload, requeues, false, error), message);
        }
        return done(decision('ack', outcome, correlationId, payload, requeues, compensated), message);
      }
      case 'unmatched':
        return done(decision(unmatched === 'requeue' ? retry(requeues) : unmatched, outcome, correlationId, payload, requeues, false), message);
      default:
        return done(decision('ack', outcome, correlationId, payload, requeues, false), message);
    }
  };
}

/**
 * A channel as amqplib's promise API offers it, as far as
 * {@link consumeReplies} uses it. An amqplib `Channel` or `ConfirmChannel`
 * fits.
 */
export interface AmqpChannelLike {
  /** Starts a consumer; resolves with the broker's name for it. */
  consume(queue: string, onMessage: (message: AmqpMessage | null) => void, options?: AmqpConsumeOptions): Promise<AmqpConsumeReply>;
  /** Stops a consumer. */
  cancel(consumerTag: string): Promise<unknown>;
  /** Acknowledges a message (with `allUpTo`, every unacknowledged one delivered on the channel before it too). */
  ack(message: AmqpMessage, allUpTo?: boolean): void;
  /** Negatively acknowledges a message. */
  nack(message: AmqpMessage, allUpTo?: boolean, requeue?: boolean): void;
  /** Publishes to a queue through the default exchange. */
  sendToQueue(queue: string, content: Buffer, options?: AmqpPublishOptions): boolean;
}

/** What `channel.consume` resolves with. */
export interface AmqpConsumeReply {
  /** The broker's name for the consumer, for `cancel`. */
  readonly consumerTag: string;
}

/** A consumed amqplib message, as far as {@link consumeReplies} reads it. */
export interface AmqpMessage extends AmqpLikeMessage {
  /** The body. */
  readonly content: Buffer;
  /** Delivery fields. */
  readonly fields: AmqpMessageFields;
  /** AMQP basic properties; every one that is set is kept on a requeue. */
  readonly properties: AmqpLikeMessage['properties'];
}

/** Delivery fields of a consumed message. */
export interface AmqpMessageFields {
  /** Whether the broker delivered this message before (to a consumer that did not acknowledge it). */
  readonly redelivered: boolean;
  /** The channel-scoped number `ack`/`nack` refer to. */
  readonly deliveryTag: number;
}

/** The consume options {@link consumeReplies} passes on to `channel.consume`. */
export interface AmqpConsumeOptions {
  /** Name of the consumer; the broker makes one up when absent. */
  consumerTag?: string;
  /** Only this consumer may read the queue. */
  exclusive?: boolean;
  /** Set by {@link ConsumeRepliesOptions.acknowledge}: `true` for `'none'`, else `false`. */
  noAck?: boolean;
  /** Consumer priority. */
  priority?: number;
  /** Broker-specific consume arguments. */
  arguments?: unknown;
}

/** The publish options {@link consumeReplies} uses to requeue a reply. */
export interface AmqpPublishOptions {
  /** Application headers. */
  headers?: Record<string, unknown>;
  /** Any other basic property, copied from the original message. */
  [property: string]: unknown;
}

/**
 * How {@link consumeReplies} acknowledges what it consumed:
 *
 * - `each`: every message with its own `ack`/`nack` frame, once decided.
 *   Safe on a channel shared with other consumers.
 * - `batched`: in delivery order, a turn's decided `ack`s in one
 *   `ack(last, allUpTo)` frame (a `nack` on its own). The same guarantees as
 *   `each` — nothing is acknowledged before it is decided — at the socket
 *   cost of an auto-ack consumer. `allUpTo` covers every delivery on the
 *   channel: give the consumer a channel of its own.
 * - `none`: the broker acknowledges on delivery (`noAck: true`) — what
 *   RabbitMQ's Direct Reply-to (`amq.rabbitmq.reply-to`) requires, and what
 *   the RabbitMQ RPC tutorial does. At most once: a reply lost in transit, or
 *   sent to a requester that is gone, is dropped by the broker, and
 *   `requeue`/`dead-letter` decisions cannot be applied — they are only
 *   reported, to `onDecision`.
 */
export type AcknowledgeMode = 'each' | 'batched' | 'none';

/** Options of {@link consumeReplies}: those of {@link createReplyHandler} plus the consumer's own. */
export interface ConsumeRepliesOptions<Res> extends ReplyHandlerOptions<AmqpMessage, Res> {
  /**
   * How messages are acknowledged; see {@link AcknowledgeMode}. The queue
   * `amq.rabbitmq.reply-to` (Direct Reply-to) takes only `'none'`.
   * @defaultValue `'each'`
   */
  acknowledge?: AcknowledgeMode;
  /** Passed to `channel.consume`; its `noAck` follows `acknowledge`. */
  consumeOptions?: AmqpConsumeOptions;
  /** Told every decision once it was applied (`batched`: once its acknowledgement is queued for the turn's frame): for logs and metrics. Must not throw. */
  onDecision?: (decision: ReplyDecision<Res>, message: AmqpMessage) => void;
  /**
   * Told when a decision could not be applied (the channel closed under an
   * `ack`) or `onDecision` threw. The broker redelivers an unacknowledged
   * message, so nothing is lost.
   * @defaultValue `process.emitWarning`
   */
  onError?: (error: unknown, message: AmqpMessage) => void;
}

/** A running reply consumer, from {@link consumeReplies}. */
export interface ReplyConsumer {
  /** The broker's name for the consumer. */
  readonly consumerTag: string;
  /** Messages being handled right now. */
  readonly inFlight: number;
  /**
   * Stops consuming and resolves once every message already received is
   * decided and acknowledged. Idempotent. Call it before `controller.close()`
   * so that no reply meets a closed controller.
   */
  cancel(): Promise<void>;
}

/**
 * Consumes a reply queue with amqplib and applies each
 * {@link createReplyHandler} decision on the channel: `ack`/`drop` → `ack`;
 * `requeue` → republish to the same queue with {@link REQUEUE_HEADER}
 * incremented, then `ack` (the count survives, the message goes to the back
 * of the queue, so no hot loop); `dead-letter`/`reject` → `nack` without
 * requeue, which the queue's `x-dead-letter-exchange` (if set) catches.
 *
 * @typeParam Res - Type of the reply payloads (the controller's `Res`).
 * @param channel - An amqplib channel (or anything shaped like {@link AmqpChannelLike}).
 * @param queue - The reply queue (the `replyTo` of the requests).
 * @param controller - The controller whose exchanges wait for the replies.
 * @param options - See {@link ConsumeRepliesOptions}.
 * @returns The running consumer; `cancel()` it on shutdown.
 * @throws {@link rrxc!InvalidArgumentError} (as a rejection) for a bad argument or option.
 *
 * @example
 * ```ts
 * import amqp from 'amqplib';
 * import { Controller } from 'rrxc';
 * import { consumeReplies } from 'rrxc/integrations';
 *
 * type Answer = { ok: boolean };
 * declare function refund(correlationId: string, answer: Answer): Promise<void>; // yours
 *
 * const controller = new Controller<unknown, Answer>();
 * const channel = await (await amqp.connect('amqp://127.0.0.1')).createChannel();
 * const { queue } = await channel.assertQueue('', { exclusive: true });
 * const consumer = await consumeReplies(channel, queue, controller, {
 *   compensate: (answer, { correlationId }) => refund(correlationId, answer),
 * });
 * // requests: channel.sendToQueue('jobs', body, { correlationId, replyTo: queue })
 * await consumer.cancel();
 * await controller.close();
 * ```
 */
export async function consumeReplies<Res>(
  channel: AmqpChannelLike,
  queue: string,
  controller: ReplyTarget<Res>,
  options?: ConsumeRepliesOptions<Res>,
): Promise<ReplyConsumer> {
  if (typeof channel !== 'object' || channel === null || typeof channel.consume !== 'function') {
    throw new InvalidArgumentError(`channel must be an amqplib channel, got ${describe(channel)}`);
  }
  checkString('queue', queue);
  const { acknowledge = 'each', consumeOptions, onDecision, onError, ...handlerOptions } = checkOptionsObject(options, 'consumeReplies options', CONSUME_KEYS);
  if (!ACKNOWLEDGE_MODES.includes(acknowledge)) throw new InvalidArgumentError(`acknowledge must be one of ${ACKNOWLEDGE_MODES.join(', ')}, got ${describe(acknowledge)}`);
  const noAck = acknowledge === 'none';
  const askedNoAck = (consumeOptions as { noAck?: unknown } | undefined)?.noAck;
  if (askedNoAck !== undefined && askedNoAck !== noAck) {
    throw new InvalidArgumentError(`consumeOptions.noAck ${describe(askedNoAck)} contradicts acknowledge '${acknowledge}': leave noAck out, acknowledge sets it`);
  }
  if (queue === DIRECT_REPLY_TO && !noAck) {
    // The broker would close the channel (406 PRECONDITION_FAILED) on the first manual acknowledgement.
    throw new InvalidArgumentError(`${DIRECT_REPLY_TO} (Direct Reply-to) needs acknowledge: 'none'; the broker refuses manual acknowledgements there`);
  }
  checkFunction('onDecision', onDecision);
  const report = checkFunction('onError', onError) ?? defaultOnError;
  const decide = replyDecider<Res, AmqpMessage>(controller, handlerOptions);
  const reportSafely = (error: unknown, message: AmqpMessage): void => {
    try {
      report(error, message);
    } catch (reportFailure) {
      // The application's own reporter failed: warn rather than leave an unhandled rejection.
      defaultOnError(reportFailure);
    }
  };
  const batch = acknowledge === 'batched' ? new BatchedAcknowledgements(channel, reportSafely) : undefined;

  // A count, not a set of promises: each message is tracked without one.
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const apply = (decision: ReplyDecision<Res>, message: AmqpMessage): void => {
    try {
      if (!noAck) settle(message, decision);
      onDecision?.(decision, message);
    } catch (error) {
      reportSafely(error, message);
    }
    if (--inFlight === 0) idle?.();
  };
  const settle = (message: AmqpMessage, { action, requeues }: ReplyDecision<Res>): void => {
    if (action === 'requeue') {
      try {
        channel.sendToQueue(queue, message.content, requeueProperties(message, requeues + 1));
      } catch (error) {
        // Not republished: give it back to the broker as it is, rather than
        // leave it undecided (a batch would then hold every ack behind it).
        if (batch !== undefined) batch.decided(message, 'release');
        throw error;
      }
    }
    const settlement = action === 'ack' || action === 'drop' || action === 'requeue' ? 'ack' : 'nack';
    if (batch !== undefined) batch.decided(message, settlement);
    else if (settlement === 'ack') channel.ack(message);
    else channel.nack(message, false, false);
  };

  let cancelled: Promise<void> | undefined;
  const { consumerTag } = await channel.consume(
    queue,
    (message) => {
      // null: the broker cancelled the consumer (the queue was deleted).
      if (message === null) return;
      inFlight++;
      batch?.delivered(message);
      void decide(message, apply);
    },
    { ...consumeOptions, noAck },
  );
  return {
    consumerTag,
    get inFlight() {
      return inFlight;
    },
    cancel() {
      cancelled ??= (async () => {
        try {
          await channel.cancel(consumerTag);
        } finally {
          if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
          await batch?.drain();
        }
      })();
      return cancelled;
    },
  };
}

const REPLY_HANDLER_OPTIONS = {
  getCorrelationId: true,
  getPayload: true,
  getRequeues: true,
  unmatched: true,
  maxRequeues: true,
  compensate: true,
  compensatedTag: true,
  overwrite: true,
} as const;
const REPLY_HANDLER_KEY_SET = optionKeys<ReplyHandlerOptions<unknown, unknown>>(REPLY_HANDLER_OPTIONS);
const CONSUME_KEYS = optionKeys<ConsumeRepliesOptions<unknown>>({ ...REPLY_HANDLER_OPTIONS, acknowledge: true, consumeOptions: true, onDecision: true, onError: true });
const ACKNOWLEDGE_MODES: readonly string[] = ['each', 'batched', 'none'] satisfies AcknowledgeMode[];
/** RabbitMQ's pseudo-queue for Direct Reply-to. */
const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
const UNMATCHED_POLICIES: readonly string[] = ['dead-letter', 'requeue', 'drop'] satisfies UnmatchedPolicy[];

function decision<Res>(
  action: ReplyAction,
  outcome: ReplyOutcome,
  correlationId: string | undefined,
  payload: NoInfer<Res> | undefined,
  requeues: number,
  compensated: boolean,
  ...error: [error?: unknown]
): ReplyDecision<Res> {
  return withRouteDetails({ action, outcome, requeues }, correlationId, payload, compensated, error);
}

function itself<T>(value: T): T {
  return value;
}

function readRequeues(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`the requeue count must be an integer ≥ 0, got ${describe(value)}`);
  }
  return value;
}

function amqpCorrelationId(message: AmqpLikeMessage): unknown {
  return message.properties.correlationId;
}

function amqpJsonPayload(message: AmqpLikeMessage): unknown {
  return parseJsonBody(message.content);
}

function amqpRequeues(message: AmqpLikeMessage): number {
  const count = message.properties.headers?.[REQUEUE_HEADER];
  return count === undefined ? 0 : Number(count);
}

function requeueProperties(message: AmqpMessage, requeues: number): AmqpPublishOptions {
  const properties: AmqpPublishOptions = {};
  for (const [key, value] of Object.entries(message.properties as Readonly<Record<string, unknown>>)) if (value !== undefined && value !== null) properties[key] = value;
  properties.headers = { ...message.properties.headers, [REQUEUE_HEADER]: requeues };
  return properties;
}

function defaultOnError(error: unknown): void {
  process.emitWarning(`rrxc reply consumer could not apply a decision: ${describeCause(error)}`, 'RrxcConsumerWarning');
}

