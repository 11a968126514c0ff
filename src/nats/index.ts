/**
 * rrxc/nats — request/reply over NATS with rrxc's exchanges: a reply
 * consumer on one inbox subscription ({@link consumeNatsReplies}) that
 * routes each reply to its waiting request, compensates late ones once
 * (through {@link "rrxc/integrations"!createReplyHandler} and
 * {@link natsReplyFields}), and ends a request at once when the server
 * reports no responders instead of at its timeout. Needs the `nats`
 * package (nats.js v2), an optional peer dependency of this subpath only.
 *
 * @packageDocumentation
 * @module rrxc/nats
 */
export {
  consumeNatsReplies,
  type ConsumeNatsRepliesOptions,
  type NatsPublishOptions,
  type NatsReplyConsumer,
  type NatsReplyDecision,
  type NatsReplyHandler,
  type NatsRequestOptions,
} from './reply-consumer.js';
export {
  NATS_CORRELATION_HEADER,
  NATS_REQUEUE_HEADER,
  natsReplyFields,
  type NatsReplyFields,
  type NatsReplyFieldsOptions,
} from './reply-fields.js';
