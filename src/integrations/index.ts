/**
 * rrxc/integrations — the two everyday uses of rrxc in a few lines each: a
 * queue consumer that routes replies and decides ack, requeue or
 * dead-letter ({@link createReplyHandler}, {@link consumeReplies} for
 * amqplib), and a `node:http` listener for webhook callbacks
 * ({@link createCallbackListener}). Neither imports a client library: the
 * amqplib channel and the HTTP framework are passed in.
 *
 * @packageDocumentation
 * @module rrxc/integrations
 */
export {
  CALLBACK_STATUS,
  CORRELATION_ID_HEADER,
  DEFAULT_CALLBACK_CONTENT_TYPES,
  DEFAULT_MAX_CALLBACK_BODY,
  createCallbackListener,
  fromHeader,
  fromPath,
  type CallbackAnswer,
  type CallbackCompensationContext,
  type CallbackListener,
  type CallbackListenerOptions,
  type CallbackOutcome,
} from './http-callback.js';
export {
  DEFAULT_MAX_REQUEUES,
  REQUEUE_HEADER,
  consumeReplies,
  createReplyHandler,
  type AmqpChannelLike,
  type AmqpConsumeOptions,
  type AmqpConsumeReply,
  type AmqpLikeMessage,
  type AmqpMessage,
  type AmqpMessageFields,
  type AmqpPublishOptions,
  type CompensationContext,
  type ConsumeRepliesOptions,
  type CustomReplyHandlerOptions,
  type ReplyAction,
  type ReplyConsumer,
  type ReplyDecision,
  type ReplyHandler,
  type ReplyHandlerOptions,
  type ReplyOutcome,
  type UnmatchedPolicy,
} from './queue-consumer.js';
export { DEFAULT_COMPENSATED_TAG, type ReplyTarget } from './reply-target.js';
export { UNANSWERED_STATUS, type ExchangeHandlerOptions, type ExchangeTarget } from './http-exchange.js';
export { expressExchange, type ExpressNext, type ExpressResponseLike } from './express.js';
export {
  fastifyExchange,
  fastifyWebhook,
  type FastifyInstanceLike,
  type FastifyPluginLike,
  type FastifyReplyLike,
  type FastifyRequestLike,
  type FastifyWebhookOptions,
} from './fastify.js';
