import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { InvalidArgumentError } from '../errors.js';
import { describe, describeCause } from '../_describe.js';
import type { ResponseOutcome } from '../types.js';
import { checkFunction, checkInteger, checkOptionsObject, optionKeys } from '../_validate.js';
import { checkString, checkTarget, classifyRouteError, CompensateOnce, correlationIdError, parseJsonBody, readCorrelationId, withRouteDetails } from './_shared.js';
import { DEFAULT_COMPENSATED_TAG, type ReplyTarget } from './reply-target.js';

/** Default {@link CallbackListenerOptions.maxBodySize}: 1 MiB. */
export const DEFAULT_MAX_CALLBACK_BODY = 1024 * 1024;

/** Header the default {@link CallbackListenerOptions.getCorrelationId} reads when no route parameter names the ID. */
export const CORRELATION_ID_HEADER = 'x-correlation-id';

/**
 * Default {@link CallbackListenerOptions.contentTypes} with the default
 * `parse`: JSON, plain or with a suffix (`application/merge-patch+json`),
 * and `text/plain` — what `fetch()` declares for a string body, so what
 * many partners send their JSON as. A form, XML or a body without
 * `content-type` answers 415.
 */
export const DEFAULT_CALLBACK_CONTENT_TYPES: readonly string[] = Object.freeze(['application/json', 'application/*+json', 'text/plain']);

/**
 * What became of one webhook callback: a {@link ResponseOutcome}, or
 *
 * - `invalid`: no or a bad correlation ID, an empty body, or a body that
 *   does not parse;
 * - `too-large`: the body exceeds `maxBodySize`;
 * - `unsupported-media-type`: its `content-type` is not one of `contentTypes`;
 * - `unauthorized`: `authorize` said no;
 * - `unavailable`: the controller is closed, its tag store failed, or its
 *   backplane could not tell what became of the reply — worth a retry;
 * - `failed`: the compensation (or something unexpected) threw — worth a retry.
 */
export type CallbackOutcome = ResponseOutcome | 'invalid' | 'too-large' | 'unsupported-media-type' | 'unauthorized' | 'unavailable' | 'failed';

/**
 * The HTTP status answered for each {@link CallbackOutcome}. 2xx tells the
 * partner to stop retrying; 410 says "too late, do not retry, it was undone";
 * 5xx invites a retry.
 *
 * | outcome | status |
 * |---|---|
 * | `delivered` | 202 Accepted |
 * | `duplicate`, `overwritten`, `committed` | 200 OK |
 * | `rolled-back` | 410 Gone |
 * | `unmatched` | 404 Not Found |
 * | `invalid` | 400 Bad Request |
 * | `unauthorized` | 401 Unauthorized |
 * | `too-large` | 413 Content Too Large |
 * | `unsupported-media-type` | 415 Unsupported Media Type |
 * | `failed` | 500 Internal Server Error |
 * | `unavailable` | 503 Service Unavailable |
 */
export const CALLBACK_STATUS: Readonly<Record<CallbackOutcome, number>> = {
  delivered: 202,
  duplicate: 200,
  overwritten: 200,
  committed: 200,
  'rolled-back': 410,
  unmatched: 404,
  invalid: 400,
  unauthorized: 401,
  'too-large': 413,
  'unsupported-media-type': 415,
  failed: 500,
  unavailable: 503,
};

/** What the callback listener answered, and why. */
export interface CallbackAnswer<Res> {
  /** The HTTP status, from {@link CALLBACK_STATUS}. */
  readonly statusCode: number;
  /** What became of the callback. */
  readonly outcome: CallbackOutcome;
  /** The correlation ID, when there was a valid one. */
  readonly correlationId?: string;
  /** The parsed reply, when it parsed. */
  readonly payload?: Res;
  /** Whether the compensation ran for this callback (`rolled-back` only). */
  readonly compensated: boolean;
  /** What went wrong, for the error outcomes. */
  readonly error?: unknown;
}

/** What {@link CallbackListenerOptions.compensate} is told besides the payload. */
export interface CallbackCompensationContext<Req> {
  /** The correlation ID of the late callback. */
  readonly correlationId: string;
  /** The HTTP request that carried it; absent when routed with `listener.route()`. */
  readonly request?: Req;
}

/**
 * Options of {@link createCallbackListener}, and of the webhook routes built
 * on it ({@link fastifyWebhook}).
 *
 * @typeParam Res - Type of the callback payloads.
 * @typeParam Req - Type of the request objects: `IncomingMessage`, a
 *   framework's subtype (Express's `Request`, whose `params` a route
 *   extractor reads), or Fastify's request.
 */
export interface CallbackListenerOptions<Res, Req extends object = IncomingMessage> {
  /**
   * Reads the correlation ID from the request: a route parameter
   * ({@link fromPath}, Express's `req.params`) or a header
   * ({@link fromHeader}). A non-string, empty or over-long value answers 400.
   * @defaultValue the `id` route parameter where a router set one (an
   *   Express or Fastify route `/callbacks/:id`), else the `x-correlation-id`
   *   header
   */
  getCorrelationId?: (request: Req) => unknown;
  /**
   * Turns the raw body into the reply; throwing answers 400. May validate.
   * It is not called for an empty body, which answers 400.
   * @defaultValue `JSON.parse` of the body as UTF-8
   */
  parse?: (body: Buffer, request: Req) => Res | Promise<Res>;
  /**
   * Media types a callback with a body may declare in its `content-type`
   * (parameters such as `charset` are ignored); any other answers 415.
   * `text/*` and `application/*+json` match a family, and the wildcard of
   * all types (star, slash, star) matches anything, also a body without
   * `content-type`, which nothing else matches.
   * @defaultValue {@link DEFAULT_CALLBACK_CONTENT_TYPES} with the default
   *   `parse`; anything with your own
   */
  contentTypes?: readonly string[];
  /**
   * Largest body accepted, in bytes; a larger one answers 413 without being
   * read to its end.
   * @defaultValue 1 048 576 (1 MiB)
   */
  maxBodySize?: number;
  /**
   * Checks the sender — a signature over the raw body, a shared secret —
   * before anything is routed; `false` answers 401.
   */
  authorize?: (request: Req, body: Buffer) => boolean | Promise<boolean>;
  /**
   * Undoes the work of a request whose exchange ended before its callback
   * came (`rolled-back`). Runs once per correlation ID while its rollback
   * tag lives, across every instance that shares the tag store; when it throws, the answer is 500, so the partner
   * retries and the compensation runs again.
   */
  compensate?: (payload: Res, context: CallbackCompensationContext<Req>) => unknown;
  /**
   * Tag that marks an ID whose compensation ran.
   * @defaultValue `"compensated"`
   */
  compensatedTag?: string;
  /**
   * Passed to `registerResponse`: a second callback replaces the first.
   * @defaultValue false
   */
  overwrite?: boolean;
  /** Told every answer once it was sent: for logs and metrics. Must not throw. */
  onAnswer?: (answer: CallbackAnswer<Res>, request: Req | undefined) => void;
}

/**
 * A `node:http` request listener for webhook callbacks, from
 * {@link createCallbackListener}. Its promise never rejects.
 */
export interface CallbackListener<Res, Req extends IncomingMessage = IncomingMessage> {
  /** Reads, routes and answers one callback request. */
  (request: Req, response: ServerResponse): Promise<void>;
  /**
   * Routes a callback whose body a framework already parsed (`express.json()`):
   * same outcomes, compensation and `onAnswer`, but it only computes the
   * answer — send `statusCode` yourself. The body rules (media type, size,
   * empty) and `authorize` are the framework's to apply then.
   *
   * @param correlationId - The ID, as read from the route or a header.
   * @param payload - The parsed body.
   * @param request - The request, handed to `compensate` and `onAnswer`.
   */
  route(correlationId: unknown, payload: Res, request?: Req): Promise<CallbackAnswer<Res>>;
}

/**
 * Makes a `node:http` request listener that receives webhook callbacks —
 * the asynchronous answers a partner posts back — and routes each to the
 * exchange waiting for it. It reads the ID with `getCorrelationId`, reads
 * the body up to `maxBodySize`, checks its `content-type`, registers the
 * reply and answers with the status of {@link CALLBACK_STATUS} and a small
 * JSON body (`{"outcome":"delivered"}`).
 *
 * It is an Express handler as it is: mount it on a route (`/callbacks/:id`)
 * where no JSON parser ran before it — it reads the raw stream, which a
 * signature check needs anyway — or behind `express.raw({ type: () => true })`,
 * whose `Buffer` it then uses. For Fastify, register {@link fastifyWebhook}.
 *
 * @typeParam Res - Type of the callback payloads (the controller's `Res`).
 * @typeParam Req - Type of the request objects (`IncomingMessage` or a subtype).
 * @param controller - The controller whose exchanges wait for the callbacks.
 * @param options - See {@link CallbackListenerOptions}.
 * @returns The listener, for `http.createServer(listener)` or an Express route.
 * @throws {@link rrxc!InvalidArgumentError} for a bad controller or option.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { Controller } from 'rrxc';
 * import { createCallbackListener, fromPath } from 'rrxc/integrations';
 *
 * type Payment = { status: 'paid' | 'failed'; amount: number };
 * declare function refund(correlationId: string, payment: Payment): Promise<void>;
 *
 * const controller = new Controller<unknown, Payment>();
 * const listener = createCallbackListener(controller, {
 *   getCorrelationId: fromPath('/callbacks/:id'),
 *   compensate: (payment, { correlationId }) => refund(correlationId, payment),
 * });
 * createServer(listener).listen(8080);
 * ```
 */
export function createCallbackListener<Res, Req extends IncomingMessage = IncomingMessage>(
  controller: ReplyTarget<Res>,
  options?: CallbackListenerOptions<Res, Req>,
): CallbackListener<Res, Req> {
  const rules = callbackRules<Res, Req>(controller, options, (request) => routeOrHeaderId(request, request));
  const listener = async (request: Req, response: ServerResponse): Promise<void> => {
    let result: CallbackAnswer<Res>;
    try {
      // express.raw() (or another raw parser) already read it: its Buffer is the body.
      const parsed = (request as { body?: unknown }).body;
      result = await rules.decide(request, Buffer.isBuffer(parsed) ? () => parsed : () => readBody(request, request.headers['content-length'], rules.maxBodySize));
    } catch (error) {
      // The client went away mid-body: nobody is left to answer.
      if (request.destroyed && !request.complete) return;
      result = answer('failed', undefined, undefined, false, error);
    }
    const { statusCode, headers, body } = httpAnswer(result, request.complete);
    if (!response.headersSent && !response.destroyed) {
      response.writeHead(statusCode, headers);
      // The rest of an oversized body is not worth reading: close afterwards.
      if (headers['connection'] === 'close') response.end(body, () => request.destroy());
      else response.end(body);
    }
    rules.told(result, request);
  };
  return Object.assign(listener, { route: rules.route });
}

/**
 * A correlation-ID extractor that reads a request header (the first value
 * when it repeats).
 *
 * @param name - The header name, any case.
 * @returns The extractor, for {@link CallbackListenerOptions.getCorrelationId}.
 * @throws {@link rrxc!InvalidArgumentError} for an empty name.
 *
 * @example
 * ```ts
 * import { Controller } from 'rrxc';
 * import { createCallbackListener, fromHeader } from 'rrxc/integrations';
 *
 * const listener = createCallbackListener(new Controller(), { getCorrelationId: fromHeader('x-request-id') });
 * ```
 */
export function fromHeader(name: string): (request: IncomingMessage) => string | undefined {
  const key = checkString('header name', name).toLowerCase();
  return (request) => firstHeader(request, key);
}

/**
 * A correlation-ID extractor that reads a parameter of the request path, for
 * plain `node:http` servers without a router: `fromPath('/callbacks/:id')`
 * reads `abc` from `/callbacks/abc?x=1`. Paths that do not match give no ID
 * (400); a percent-encoded segment is decoded.
 *
 * @param pattern - A path with a `:name` segment, e.g. `/hooks/:id/done`; with
 *   several, the last one is the ID.
 * @returns The extractor, for {@link CallbackListenerOptions.getCorrelationId}.
 * @throws {@link rrxc!InvalidArgumentError} for a pattern without a `:name` segment.
 *
 * @example
 * ```ts
 * import { Controller } from 'rrxc';
 * import { createCallbackListener, fromPath } from 'rrxc/integrations';
 *
 * const listener = createCallbackListener(new Controller(), { getCorrelationId: fromPath('/partners/:partner/callbacks/:id') });
 * ```
 */
export function fromPath(pattern: string): (request: IncomingMessage) => string | undefined {
  const segments = checkString('pattern', pattern).split('/');
  const at = segments.findLastIndex((s) => s.startsWith(':'));
  if (at === -1) throw new InvalidArgumentError(`pattern must contain a \`:name\` segment, got ${describe(pattern)}`);
  return (request) => {
    const path = (request.url ?? '').split('?', 1)[0]!.split('/');
    if (path.length !== segments.length) return undefined;
    for (let i = 0; i < segments.length; i++) {
      if (!segments[i]!.startsWith(':') && segments[i] !== path[i]) return undefined;
    }
    try {
      return decodeURIComponent(path[at]!);
    } catch {
      return undefined;
    }
  };
}

/**
 * The rules of a webhook callback, apart from how its body is read and its
 * answer sent: what {@link createCallbackListener} and the framework
 * integrations share, so that a callback gets the same answer whichever
 * received it.
 * @internal
 */
export interface CallbackRules<Res, Req> {
  /** The `maxBodySize` option, for whoever reads the body. */
  readonly maxBodySize: number;
  /**
   * Decides one callback, in this order: its ID (400), the body's size
   * (413), an empty body (400), its media type (415), `authorize` (401),
   * `parse` (400), then routing. `read` gives the raw body, or `undefined`
   * for one over `maxBodySize`; it is called once the ID passed. It does
   * not tell `onAnswer`: the caller does, once the answer is sent.
   */
  decide(request: Req, read: () => Buffer | undefined | Promise<Buffer | undefined>): Promise<CallbackAnswer<Res>>;
  /** {@link CallbackListener.route}. */
  route(correlationId: unknown, payload: Res, request?: Req): Promise<CallbackAnswer<Res>>;
  /** Tells `onAnswer`; a hook that throws is reported as a warning. */
  told(answer: CallbackAnswer<Res>, request: Req | undefined): CallbackAnswer<Res>;
}

/**
 * Validates the options once and makes the {@link CallbackRules}.
 * @internal
 *
 * @param defaultId - The ID extractor when `getCorrelationId` is not given.
 */
export function callbackRules<Res, Req extends { readonly headers: IncomingHttpHeaders }>(
  controller: ReplyTarget<Res>,
  options: CallbackListenerOptions<Res, Req> | undefined,
  defaultId: (request: Req) => unknown,
): CallbackRules<Res, Req> {
  checkTarget(controller);
  const given = checkOptionsObject(options, 'callback listener options', CALLBACK_KEYS);
  const getCorrelationId = checkFunction('getCorrelationId', given.getCorrelationId) ?? defaultId;
  const customParse = checkFunction('parse', given.parse);
  const parse = customParse ?? (parseJsonBody as (body: Buffer) => Res);
  const accepts = mediaTypeMatcher(given.contentTypes ?? (customParse === undefined ? DEFAULT_CALLBACK_CONTENT_TYPES : ANY_CONTENT_TYPE));
  const maxBodySize = checkInteger('maxBodySize', given.maxBodySize ?? DEFAULT_MAX_CALLBACK_BODY, 0);
  const authorize = checkFunction('authorize', given.authorize);
  const onAnswer = checkFunction('onAnswer', given.onAnswer);
  const overwrite = given.overwrite === true;
  const compensatedTag = checkString('compensatedTag', given.compensatedTag ?? DEFAULT_COMPENSATED_TAG);
  const compensator = new CompensateOnce<Res, CallbackCompensationContext<Req>>(controller, checkFunction('compensate', given.compensate), compensatedTag);

  const routeReply = async (correlationId: string, payload: Res, request: Req | undefined): Promise<CallbackAnswer<Res>> => {
    let outcome: ResponseOutcome;
    try {
      outcome = await controller.registerResponse({ correlationId, message: payload, ...(overwrite ? { overwrite } : undefined) });
    } catch (error) {
      const kind = classifyRouteError(error);
      if (kind === 'invalid') return answer('invalid', undefined, undefined, false, error);
      return answer(kind === 'retryable' ? 'unavailable' : 'failed', correlationId, payload, false, error);
    }
    if (outcome !== 'rolled-back') return answer(outcome, correlationId, payload, false);
    try {
      const context = request === undefined ? { correlationId } : { correlationId, request };
      return answer(outcome, correlationId, payload, await compensator.run(correlationId, payload, context));
    } catch (error) {
      return answer('failed', correlationId, payload, false, error);
    }
  };

  const told = (result: CallbackAnswer<Res>, request: Req | undefined): CallbackAnswer<Res> => {
    try {
      onAnswer?.(result, request);
    } catch (error) {
      process.emitWarning(`rrxc callback listener: onAnswer threw: ${describeCause(error)}`, 'RrxcCallbackWarning');
    }
    return result;
  };

  return {
    maxBodySize,
    async decide(request, read) {
      let correlationId: string;
      try {
        correlationId = readCorrelationId('callback', getCorrelationId(request));
      } catch (error) {
        return answer('invalid', undefined, undefined, false, error);
      }
      const body = await read();
      if (body === undefined || body.length > maxBodySize) {
        return answer('too-large', correlationId, undefined, false, new InvalidArgumentError(`the callback body exceeds maxBodySize (${maxBodySize} bytes)`));
      }
      if (body.length === 0) return answer('invalid', correlationId, undefined, false, new InvalidArgumentError('the callback has an empty body'));
      const contentType = firstValue(request.headers['content-type']);
      if (!accepts(contentType)) {
        const error = new InvalidArgumentError(`the callback's content-type must be one of ${accepts.patterns.join(', ')}, got ${describe(contentType)}`);
        return answer('unsupported-media-type', correlationId, undefined, false, error);
      }
      try {
        if (authorize !== undefined && !(await authorize(request, body))) return answer('unauthorized', correlationId, undefined, false);
      } catch (error) {
        return answer('failed', correlationId, undefined, false, error);
      }
      let payload: Res;
      try {
        payload = await parse(body, request);
      } catch (error) {
        return answer('invalid', correlationId, undefined, false, error);
      }
      return routeReply(correlationId, payload, request);
    },
    async route(correlationId, payload, request) {
      const invalid = correlationIdError('callback', correlationId);
      if (invalid !== undefined) return told(answer('invalid', undefined, undefined, false, invalid), request);
      return told(await routeReply(correlationId as string, payload, request), request);
    },
    told,
  };
}

/**
 * The status, headers and JSON body that answer a callback: `{"outcome": …}`,
 * plus the error message for a client error (server errors keep theirs in).
 * @internal
 *
 * @param complete - Whether the request body was read to its end; if not,
 *   the connection is closed after the answer (`connection: close`).
 */
export function httpAnswer(result: CallbackAnswer<unknown>, complete: boolean): { statusCode: number; headers: Record<string, string>; body: string } {
  const json: Record<string, unknown> = { outcome: result.outcome };
  if (result.statusCode < 500 && result.error instanceof Error) json['error'] = result.error.message;
  const body = JSON.stringify(json);
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
  };
  if (result.outcome === 'too-large' && !complete) headers['connection'] = 'close';
  if (result.outcome === 'unavailable') headers['retry-after'] = '1';
  return { statusCode: result.statusCode, headers, body };
}

/**
 * The default correlation-ID extractor: the `id` route parameter where a
 * router set one, else the first `x-correlation-id` header.
 * @internal
 *
 * @param routed - What carries `params` (Express's request, Fastify's).
 * @param raw - The `node:http` request, for its headers.
 */
export function routeOrHeaderId(routed: object, raw: IncomingMessage): unknown {
  const params = (routed as { params?: unknown }).params;
  const id = typeof params === 'object' && params !== null ? (params as Record<string, unknown>)['id'] : undefined;
  return id ?? firstHeader(raw, CORRELATION_ID_HEADER);
}

/**
 * Reads a body, at most `limit` bytes; `undefined` when it is larger. A
 * declared `content-length` over the limit is refused before reading.
 * @internal
 */
export function readBody(stream: Readable, contentLength: string | undefined, limit: number): Promise<Buffer | undefined> {
  if (stream.readableEnded) {
    return Promise.reject(new Error('the request body was already read, by a body parser mounted before the callback listener; mount it first, or use listener.route()'));
  }
  if (Number(contentLength) > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        stream.pause();
        resolve(undefined);
      } else chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('the request closed before its body was read'));
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

const CALLBACK_KEYS = optionKeys<CallbackListenerOptions<unknown>>({
  getCorrelationId: true,
  parse: true,
  contentTypes: true,
  maxBodySize: true,
  authorize: true,
  compensate: true,
  compensatedTag: true,
  overwrite: true,
  onAnswer: true,
});

const ANY_CONTENT_TYPE: readonly string[] = ['*/*'];

function answer<Res>(
  outcome: CallbackOutcome,
  correlationId: string | undefined,
  payload: NoInfer<Res> | undefined,
  compensated: boolean,
  ...error: [error?: unknown]
): CallbackAnswer<Res> {
  return withRouteDetails({ statusCode: CALLBACK_STATUS[outcome], outcome }, correlationId, payload, compensated, error);
}

/** The first value of a request header, whether it came once or repeated. */
function firstHeader(request: IncomingMessage, key: string): string | undefined {
  // headersDistinct, not headers: Node joins a repeated custom header's
  // values into one string ("a, b"), which is no correlation ID.
  return request.headersDistinct[key]?.[0];
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** A media-type pattern: `type/subtype`, `type/*`, `type/*+suffix`, or the wildcard of all types. */
const MEDIA_PATTERN = /^(?:\*\/\*|[\w!#$&^.+-]+\/(?:\*|\*\+[\w!#$&^.-]+|[\w!#$&^.+-]+))$/;

/** Whether a `content-type` value is one of `patterns`; the patterns are checked here, once. */
function mediaTypeMatcher(patterns: readonly string[]): ((contentType: string | undefined) => boolean) & { readonly patterns: readonly string[] } {
  if (!Array.isArray(patterns) || patterns.length === 0 || !patterns.every((p) => typeof p === 'string' && MEDIA_PATTERN.test(p.toLowerCase()))) {
    throw new InvalidArgumentError(`contentTypes must be a non-empty array of media types such as "application/json", "text/*" or "*/*", got ${describe(patterns)}`);
  }
  const lower = patterns.map((p) => p.toLowerCase());
  const matches = (contentType: string | undefined): boolean => {
    if (lower.includes('*/*')) return true;
    if (contentType === undefined) return false;
    const [type = '', subtype = ''] = contentType.split(';', 1)[0]!.trim().toLowerCase().split('/');
    if (type === '' || subtype === '') return false;
    return lower.some((p) => {
      const [pType, pSub] = p.split('/') as [string, string];
      if (pType !== type) return false;
      if (pSub === '*') return true;
      if (pSub.startsWith('*+')) return subtype.endsWith(pSub.slice(1));
      return pSub === subtype;
    });
  };
  return Object.assign(matches, { patterns: Object.freeze(lower) });
}
