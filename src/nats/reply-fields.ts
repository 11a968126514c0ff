import type { Msg } from 'nats';
import { describe } from '../_describe.js';
import { InvalidArgumentError } from '../errors.js';
import { checkOptionsObject, optionKeys } from '../_validate.js';

/**
 * Header in which {@link NatsReplyConsumer.publish} and
 * {@link NatsReplyConsumer.request} stamp the correlation ID, besides the
 * reply subject, when the consumer's `correlationHeader` is on (it is when
 * its `header` option is given): for a worker that answers somewhere else
 * than `msg.reply` (another service, a stream) and must name the ID there.
 * Read it back with `consumeNatsReplies(nc, controller, { header: NATS_CORRELATION_HEADER })`.
 * Otherwise requests carry no header of rrxc's: the ID is the last token of
 * `msg.reply` (`<inbox>.<correlationId>`).
 * Not `Nats-…`: that prefix belongs to the server and JetStream.
 */
export const NATS_CORRELATION_HEADER = 'Rrxc-Correlation-Id';

/**
 * Header in which the requeue count of a reply travels: {@link consumeNatsReplies}
 * republishes a requeued reply with it incremented, and the
 * {@link NatsReplyFields.getRequeues} of {@link natsReplyFields} reads it,
 * so that the handler's `maxRequeues` bound holds — core NATS has no
 * redelivery count of its own.
 */
export const NATS_REQUEUE_HEADER = 'Rrxc-Requeues';

/** Options of {@link natsReplyFields}. */
export interface NatsReplyFieldsOptions {
  /**
   * Read the correlation ID from this header instead of the reply subject,
   * for replies that do not come to `<inbox>.<correlationId>`. A
   * no-responders status never carries it: that one is always matched by
   * its subject.
   * @defaultValue none: the last token of the subject
   */
  header?: string;
}

/**
 * How a NATS reply message is read: the three extractors that
 * {@link "rrxc/integrations"!createReplyHandler} needs for a message type that is not
 * amqplib-shaped. Spread them into its options, and override any of them
 * (`getPayload` for a codec other than JSON); {@link consumeNatsReplies}
 * does so itself.
 *
 * @typeParam Res - Type of the reply payloads.
 */
export interface NatsReplyFields<Res> {
  /** The correlation ID: the last token of `msg.subject`, or the header named by {@link NatsReplyFieldsOptions.header}. */
  getCorrelationId(message: Msg): unknown;
  /** The reply: `msg.data` as UTF-8 JSON; bytes that are not UTF-8 throw rather than parse with U+FFFD in them. */
  getPayload(message: Msg): Res;
  /** How often the reply was requeued: the {@link NATS_REQUEUE_HEADER} header, 0 when absent. */
  getRequeues(message: Msg): number;
}

/**
 * The extractors that make {@link "rrxc/integrations"!createReplyHandler} read NATS
 * messages. {@link consumeNatsReplies} uses them (its `header`,
 * `getCorrelationId` and `getPayload` options choose among them); spread
 * them into `createReplyHandler`'s options yourself for a subscription of
 * your own — a queue group, a subject other than `<inbox>.*`. By default
 * the correlation ID is the last token of the subject, where
 * {@link NatsReplyConsumer.publish} puts it (`<inbox>.<correlationId>`), so
 * a worker that answers with plain `msg.respond(data)` needs to know
 * nothing about rrxc.
 *
 * @typeParam Res - Type of the reply payloads.
 * @param options - Where the correlation ID is read from.
 * @returns `{ getCorrelationId, getPayload, getRequeues }`.
 * @throws {@link rrxc!InvalidArgumentError} for a bad header name or an unknown option.
 *
 * @example
 * ```ts
 * import type { NatsConnection } from 'nats';
 * import { Controller } from 'rrxc';
 * import { createReplyHandler } from 'rrxc/integrations';
 * import { NATS_CORRELATION_HEADER, natsReplyFields } from 'rrxc/nats';
 *
 * interface Answer { double: number }
 * declare const nc: NatsConnection;
 * declare function refund(correlationId: string, answer: Answer): Promise<void>;
 *
 * // A partner answers on one subject that the instances share as a queue group, the ID in a header.
 * const controller = new Controller<unknown, Answer>();
 * const handle = createReplyHandler(controller, {
 *   ...natsReplyFields<Answer>({ header: NATS_CORRELATION_HEADER }),
 *   compensate: (answer, { correlationId }) => refund(correlationId, answer),
 * });
 * nc.subscribe('partner.replies', {
 *   queue: 'rrxc',
 *   callback: (_, msg) => void handle(msg).then((decision) => console.log(decision.outcome)),
 * });
 * ```
 */
export function natsReplyFields<Res>(options?: NatsReplyFieldsOptions): NatsReplyFields<Res> {
  const { header } = checkOptionsObject(options, 'natsReplyFields options', FIELDS_KEYS);
  if (header !== undefined && (typeof header !== 'string' || !HEADER_NAME.test(header))) {
    throw new InvalidArgumentError(`header must be a header name (printable ASCII but ":", no spaces), got ${describe(header)}`);
  }
  return {
    getCorrelationId: header === undefined ? lastToken : (message) => message.headers?.get(header),
    getPayload: (message) => JSON.parse(DECODER.decode(message.data)) as Res,
    getRequeues: (message) => {
      const count = message.headers?.get(NATS_REQUEUE_HEADER);
      return count === undefined || count === '' ? 0 : Number(count);
    },
  };
}

function lastToken(message: Msg): string {
  return message.subject.slice(message.subject.lastIndexOf('.') + 1);
}

const FIELDS_KEYS = optionKeys<NatsReplyFieldsOptions>({ header: true });
const HEADER_NAME = /^[!-9;-~]+$/;
// fatal: as the integrations' JSON parser, a body that is not UTF-8 is refused.
const DECODER = new TextDecoder('utf-8', { fatal: true });
