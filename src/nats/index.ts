/**
 * rrxc/nats — request/reply over NATS with rrxc's exchanges: a reply
 * consumer on one inbox subscription ({@link consumeNatsReplies}) that
 * routes each reply to its waiting request and compensates late ones once,
 * as {@link "rrxc/integrations"!consumeReplies} does for amqplib, and ends
 * a request at once, instead of at its timeout, when the server reports no
 * responders or the connection closes. {@link natsReplyFields} reads NATS
 * messages for {@link "rrxc/integrations"!createReplyHandler}, for a
 * consumer of one's own (a JetStream one). Needs the `nats` package
 * (nats.js v2), an optional peer dependency of this subpath only.
 *
 * @packageDocumentation
 * @module rrxc/nats
 */
export {
  consumeNatsReplies,
  type ConsumeNatsRepliesOptions,
  type NatsPublishOptions,
  type NatsReplyConsumer,
  type NatsRequestOptions,
} from './reply-consumer.js';
export {
  NATS_CORRELATION_HEADER,
  NATS_REQUEUE_HEADER,
  natsReplyFields,
  type NatsReplyFields,
  type NatsReplyFieldsOptions,
} from './reply-fields.js';
