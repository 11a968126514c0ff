// Fastify, typed structurally: rrxc does not depend on fastify (nor on
// fastify-plugin), and its published types name nothing of them.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { InvalidArgumentError } from '../errors.js';
import type { Exchange } from '../exchange.js';
import { describe } from '../_describe.js';
import { checkString } from './_shared.js';
import { callbackRules, httpAnswer, readBody, routeOrHeaderId, type CallbackAnswer, type CallbackListenerOptions } from './http-callback.js';
import { exchangeHandlerSettings, serveExchange, unansweredAnswer, type ExchangeHandlerOptions, type ExchangeTarget } from './http-exchange.js';
import type { ReplyTarget } from './reply-target.js';

/** The part of Fastify's `FastifyRequest` the integrations use. */
export interface FastifyRequestLike {
  /** The `node:http` request. */
  readonly raw: IncomingMessage;
  /** Its headers. */
  readonly headers: IncomingHttpHeaders;
  /** The route parameters (`{ id }` for `/callbacks/:id`). */
  readonly params: unknown;
  /** The parsed body. */
  readonly body: unknown;
}

/** The part of Fastify's `FastifyReply` the integrations use. */
export interface FastifyReplyLike {
  /** The `node:http` response. */
  readonly raw: ServerResponse;
  /** Whether a response was sent (or the reply hijacked). */
  readonly sent: boolean;
  /** Sets the status code. */
  code(statusCode: number): FastifyReplyLike;
  /** Sets a header. */
  header(name: string, value: string): FastifyReplyLike;
  /** Sends the payload. */
  send(payload?: unknown): FastifyReplyLike;
}

/** The part of a `FastifyInstance` {@link fastifyWebhook} uses. */
export interface FastifyInstanceLike {
  /**
   * Registers a plugin: here the webhook's own encapsulated scope, which
   * gets an instance like this one. Typed `unknown` so that every Fastify
   * instance type, whatever its server and type provider, is one of these.
   */
  register(plugin: (instance: unknown) => Promise<void>, options: { prefix?: string }): unknown;
  /** Removes the content-type parsers this scope inherited. */
  removeAllContentTypeParsers(): void;
  /** Adds a content-type parser to this scope (`*`: any type, and none). */
  addContentTypeParser(
    contentType: string,
    parser: (request: FastifyRequestLike, payload: IncomingMessage, done: (error: Error | null, body?: unknown) => void) => void,
  ): void;
  /** Adds a POST route. */
  post(path: string, handler: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>): unknown;
}

/** Options of {@link fastifyWebhook}: the listener's, and the route's path. */
export interface FastifyWebhookOptions<Res> extends CallbackListenerOptions<Res, FastifyRequestLike> {
  /**
   * The route the partner posts its callbacks to. The default
   * `getCorrelationId` reads its `:id` parameter.
   * @defaultValue `"/callbacks/:id"`
   */
  path?: string;
}

/** A Fastify plugin, for `fastify.register()`. */
export type FastifyPluginLike = (instance: FastifyInstanceLike, options: Record<string, unknown>) => Promise<void>;

/**
 * A Fastify plugin that registers the webhook route receiving callbacks —
 * `POST /callbacks/:id` unless `path` says otherwise — with the very rules
 * and answers of {@link createCallbackListener}: the same statuses
 * ({@link CALLBACK_STATUS}), the same body rules (400 for an empty body or
 * one that does not parse, 413 over `maxBodySize`, 415 for a media type
 * outside `contentTypes`), `authorize` over the raw body for a signature
 * check, compensation of late callbacks, `onAnswer`.
 *
 * The route reads its raw body itself: a content-type parser for every
 * type, in a scope of its own, so the rest of the application keeps
 * Fastify's JSON parser and `bodyLimit`. The plugin is not encapsulated (it
 * sets `Symbol.for('skip-override')`, as `fastify-plugin` does, without
 * depending on it): it belongs to the scope it is registered in, whose
 * hooks its route gets; a `prefix` given to `register` applies to its
 * path.
 *
 * @typeParam Res - Type of the callback payloads (the controller's `Res`).
 * @param controller - The controller whose exchanges wait for the callbacks.
 * @param options - The listener's options and the route's `path`.
 * @returns The plugin, for `fastify.register()`.
 * @throws {@link rrxc!InvalidArgumentError} for a bad controller or option.
 *
 * @example
 * ```ts
 * import { createHmac, timingSafeEqual } from 'node:crypto';
 * import Fastify from 'fastify';
 * import { Controller } from 'rrxc';
 * import { fastifyWebhook } from 'rrxc/integrations';
 *
 * const controller = new Controller();
 * const secret = 'shared with the partner';
 * const signed = (signature: unknown, body: Buffer): boolean => {
 *   const expected = createHmac('sha256', secret).update(body).digest();
 *   const given = Buffer.from(typeof signature === 'string' ? signature : '', 'hex');
 *   return given.length === expected.length && timingSafeEqual(given, expected);
 * };
 *
 * const app = Fastify();
 * await app.register(fastifyWebhook(controller, {
 *   authorize: (request, body) => signed(request.headers['x-signature'], body),
 * }));
 * ```
 */
export function fastifyWebhook<Res>(controller: ReplyTarget<Res>, options?: FastifyWebhookOptions<Res>): FastifyPluginLike {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new InvalidArgumentError(`fastify webhook options must be an object, got ${describe(options)}`);
  }
  const { path = DEFAULT_WEBHOOK_PATH, ...listenerOptions } = options ?? {};
  checkString('path', path);
  const rules = callbackRules<Res, FastifyRequestLike>(controller, listenerOptions, (request) => routeOrHeaderId(request, request.raw));

  const parse = (request: FastifyRequestLike, payload: IncomingMessage, done: (error: Error | null, body?: unknown) => void): void => {
    readBody(payload, request.headers['content-length'], rules.maxBodySize).then((body) => done(null, body ?? TOO_LARGE), done);
  };
  const receive = async (request: FastifyRequestLike, reply: FastifyReplyLike): Promise<unknown> => {
    const { body } = request;
    // No body at all (Fastify then calls no parser): an empty one.
    const result: CallbackAnswer<Res> = await rules.decide(request, () => (body === TOO_LARGE ? undefined : Buffer.isBuffer(body) ? body : EMPTY));
    const { statusCode, headers, body: text } = httpAnswer(result, request.raw.complete);
    // The rest of an oversized body is not worth reading: close afterwards.
    if (headers['connection'] === 'close') reply.raw.once('finish', () => request.raw.destroy());
    reply.code(statusCode);
    for (const [name, value] of Object.entries(headers)) reply.header(name, value);
    reply.send(text);
    rules.told(result, request);
    return reply;
  };
  const plugin: FastifyPluginLike = async (instance, { prefix }) => {
    // Not encapsulated, the plugin would have its `prefix` ignored by Fastify; its scope takes it instead.
    instance.register(async (child) => {
      const scope = child as FastifyInstanceLike;
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', parse);
      scope.post(path, receive);
    }, typeof prefix === 'string' ? { prefix } : {});
  };
  return Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'rrxc-webhook' });
}

/**
 * A Fastify route handler that serves each request with an exchange: it
 * runs `operation` in an exchange bound to the request — the exchange
 * aborts when the client closes the connection, and times out after
 * `timeout` — and answers with what `operation` resolves with, once every
 * request registered in the exchange is answered, as a route handler's
 * return value (Fastify serializes it, with the route's response schema).
 *
 * | how the exchange ended | the answer |
 * |---|---|
 * | `completed` | what `operation` resolved with; 204 for `undefined`; nothing more when `operation` sent a reply itself |
 * | `timed-out` | 504 `{"status":"timed-out"}` (or `onUnanswered`) |
 * | `closed` (controller shutting down) | 503 `{"status":"closed"}` with `retry-after` (or `onUnanswered`) |
 * | `aborted` (client gone) | nothing reaches the client: status 499 for the logs |
 * | `operation` threw while the exchange was open | the error, to Fastify's error handler, after the exchange was closed and its IDs tagged |
 *
 * @typeParam Req - The controller's request type.
 * @typeParam Res - The controller's reply type.
 * @typeParam A - What `operation` answers with.
 * @typeParam R - Fastify's request type, as `operation` declares it.
 * @typeParam P - Fastify's reply type.
 * @param controller - The controller that makes the exchanges.
 * @param operation - Registers the requests and sends them; resolves with
 *   the answer, typically after awaiting the `response` of its requests.
 * @param options - See {@link ExchangeHandlerOptions}.
 * @returns The handler, for `fastify.get()`, `fastify.post()`, `fastify.route()`.
 * @throws {@link rrxc!InvalidArgumentError} for a bad controller, operation or option.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { Controller } from 'rrxc';
 * import { fastifyExchange, fastifyWebhook } from 'rrxc/integrations';
 *
 * type Quote = { amount: number; currency: string };
 * declare function askPartner(correlationId: string, callbackUrl: string): Promise<void>;
 *
 * const controller = new Controller<unknown, Quote>({ timeout: 5_000 });
 * const app = Fastify();
 * await app.register(fastifyWebhook(controller));
 * app.get('/quote', fastifyExchange(controller, async (xc) => {
 *   const { correlationId, response } = xc.registerRequest();
 *   await askPartner(correlationId, `https://shop.example/callbacks/${correlationId}`);
 *   return response; // the partner's callback; 504 if it does not come in 5 s
 * }));
 * ```
 */
export function fastifyExchange<Req, Res, A, R extends FastifyRequestLike = FastifyRequestLike, P extends FastifyReplyLike = FastifyReplyLike>(
  controller: ExchangeTarget<Req, Res>,
  operation: (exchange: Exchange<Req, Res>, request: R, reply: P) => A | PromiseLike<A>,
  options?: ExchangeHandlerOptions<R, P>,
): (request: R, reply: P) => Promise<unknown> {
  const { timeout, onUnanswered } = exchangeHandlerSettings(controller, operation, options);
  return async (request, reply) => {
    const { result, answer } = await serveExchange(controller, reply.raw, timeout, (xc) => operation(xc, request, reply));
    if (reply.sent) return reply;
    if (result.status === 'completed') return answer === undefined ? reply.code(204).send() : answer;
    if (result.status === 'aborted' || reply.raw.destroyed) return reply.code(499).send();
    if (onUnanswered !== undefined) return onUnanswered(result, request, reply);
    const { statusCode, headers, body } = unansweredAnswer(result);
    reply.code(statusCode);
    for (const [name, value] of Object.entries(headers)) reply.header(name, value);
    return reply.send(body);
  };
}

const DEFAULT_WEBHOOK_PATH = '/callbacks/:id';

/** What the parser hands the route for a body over `maxBodySize`, which it stopped reading. */
const TOO_LARGE = Symbol('too large');

const EMPTY = Buffer.alloc(0);
