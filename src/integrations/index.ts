/**
 * rrxc/integrations — the everyday uses of rrxc in a few lines each:
 *
 * - a queue consumer that routes replies and decides ack, requeue or
 *   dead-letter: {@link consumeReplies} for amqplib,
 *   {@link createReplyHandler} for any client;
 * - webhook callbacks, with the same rules and answers everywhere: a
 *   `node:http` listener that is an Express handler as it is
 *   ({@link createCallbackListener}), and a Fastify plugin
 *   ({@link fastifyWebhook});
 * - HTTP handlers that wait for a reply: {@link expressExchange} and
 *   {@link fastifyExchange} serve each request with an exchange bound to
 *   its connection, and answer 504 when the reply does not come in time.
 *
 * None imports a client library or a framework: the amqplib channel and
 * the application are passed in, typed by their shape.
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
  type AcknowledgeMode,
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
