import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidArgumentError } from '../errors.js';
import { describe, describeCause } from '../_describe.js';
import type { ResponseOutcome } from '../types.js';
import { checkFunction, checkInteger, checkOptionsObject, optionKeys } from '../_validate.js';
import { checkString, checkTarget, classifyRouteError, CompensateOnce, correlationIdError, parseJsonBody, readCorrelationId, withRouteDetails } from './_shared.js';
import { DEFAULT_COMPENSATED_TAG, type ReplyTarget } from './reply-target.js';

/** Default {@link CallbackListenerOptions.maxBodySize}: 1 MiB. */
export const DEFAULT_MAX_CALLBACK_BODY = 1024 * 1024;

/** Header the default {@link CallbackListenerOptions.getCorrelationId} reads. */
export const CORRELATION_ID_HEADER = 'x-correlation-id';

/**
 * What became of one webhook callback: a {@link ResponseOutcome}, or
 *
 * - `invalid`: no or a bad correlation ID, or a body that does not parse;
 * - `too-large`: the body exceeds `maxBodySize`;
 * - `unauthorized`: `authorize` said no;
 * - `unavailable`: the controller is closed, its tag store failed, or its
 *   backplane could not tell what became of the reply — worth a retry;
 * - `failed`: the compensation (or something unexpected) threw — worth a retry.
 */
export type CallbackOutcome = ResponseOutcome | 'invalid' | 'too-large' | 'unauthorized' | 'unavailable' | 'failed';

/**
 * The HTTP status answered for each {@link CallbackOutcome}. 2xx tells the
 * partner to stop retrying; 410 says "too late, do not retry, it was undone";
 * 5xx invites a retry.
 *
 * | outcome | status |
 * |---|---|
 * | `delivered` | 202 Accepted |
 * | `duplicate`, `overwritten` | 200 OK |
 * | `rolled-back` | 410 Gone |
 * | `unmatched` | 404 Not Found |
 * | `invalid` | 400 Bad Request |
 * | `unauthorized` | 401 Unauthorized |
 * | `too-large` | 413 Content Too Large |
 * | `failed` | 500 Internal Server Error |
 * | `unavailable` | 503 Service Unavailable |
 */
export const CALLBACK_STATUS: Readonly<Record<CallbackOutcome, number>> = {
  delivered: 202,
  duplicate: 200,
  overwritten: 200,
  'rolled-back': 410,
  unmatched: 404,
  invalid: 400,
  unauthorized: 401,
  'too-large': 413,
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
 * Options of {@link createCallbackListener}.
 *
 * @typeParam Res - Type of the callback payloads.
 * @typeParam Req - Type of the request objects: `IncomingMessage`, or a
 *   framework's subtype (Express's `Request`, whose `params` a route
 *   extractor reads).
 */
export interface CallbackListenerOptions<Res, Req extends IncomingMessage = IncomingMessage> {
  /**
   * Reads the correlation ID from the request: a route parameter
   * ({@link fromPath}, Express's `req.params`) or a header
   * ({@link fromHeader}). A non-string, empty or over-long value answers 400.
   * @defaultValue `fromHeader("x-correlation-id")`
   */
  getCorrelationId?: (request: Req) => unknown;
  /**
   * Turns the raw body into the reply; throwing answers 400. May validate.
   * @defaultValue `JSON.parse` of the body as UTF-8
   */
  parse?: (body: Buffer, request: Req) => Res | Promise<Res>;
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
   * came (`rolled-back`). Runs at most once per correlation ID while its
   * rollback tag lives; when it throws, the answer is 500, so the partner
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
   * Routes a callback whose body a framework already parsed (Fastify,
   * Express with `express.json()`): same outcomes, compensation and
   * `onAnswer`, but it only computes the answer — send `statusCode` yourself.
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
 * the body up to `maxBodySize`, registers the reply and answers with the
 * status of {@link CALLBACK_STATUS} and a small JSON body
 * (`{"outcome":"delivered"}`).
 *
 * Mount it where no body parser ran before it (it reads the raw stream);
 * behind one, use `listener.route()`.
 *
 * @typeParam Res - Type of the callback payloads (the controller's `Res`).
 * @typeParam Req - Type of the request objects (`IncomingMessage` or a subtype).
 * @param controller - The controller whose exchanges wait for the callbacks.
 * @param options - See {@link CallbackListenerOptions}.
 * @returns The listener, for `http.createServer(listener)`, an Express
 *   route, or a hijacked Fastify reply.
 * @throws {@link index!InvalidArgumentError} for a bad controller or option.
 *
 * @example
 * ```ts
 * const listener = createCallbackListener(controller, {
 *   getCorrelationId: fromPath('/callbacks/:id'),
 *   compensate: (payment, { correlationId }) => refund(correlationId, payment),
 * });
 * http.createServer(listener).listen(8080);
 * ```
 */
export function createCallbackListener<Res, Req extends IncomingMessage = IncomingMessage>(
  controller: ReplyTarget<Res>,
  options?: CallbackListenerOptions<Res, Req>,
): CallbackListener<Res, Req> {
  checkTarget(controller);
  const given = checkOptionsObject(options, 'callback listener options', CALLBACK_KEYS);
  const getCorrelationId = checkFunction('getCorrelationId', given.getCorrelationId) ?? (fromHeader(CORRELATION_ID_HEADER) as (request: Req) => unknown);
  const parse = checkFunction('parse', given.parse) ?? (parseJsonBody as (body: Buffer) => Res);
  const maxBodySize = checkInteger('maxBodySize', given.maxBodySize ?? DEFAULT_MAX_CALLBACK_BODY, 0);
  const authorize = checkFunction('authorize', given.authorize);
  const onAnswer = checkFunction('onAnswer', given.onAnswer);
  const overwrite = given.overwrite === true;
  const compensatedTag = checkString('compensatedTag', given.compensatedTag ?? DEFAULT_COMPENSATED_TAG);
  const compensator = new CompensateOnce<Res, CallbackCompensationContext<Req>>(controller, checkFunction('compensate', given.compensate), compensatedTag);

  const route = async (correlationId: string, payload: Res, request: Req | undefined): Promise<CallbackAnswer<Res>> => {
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

  const decide = async (request: Req): Promise<CallbackAnswer<Res>> => {
    let correlationId: string;
    try {
      correlationId = readCorrelationId('callback', getCorrelationId(request));
    } catch (error) {
      return answer('invalid', undefined, undefined, false, error);
    }
    const body = await readBody(request, maxBodySize);
    if (body === undefined) {
      return answer('too-large', correlationId, undefined, false, new InvalidArgumentError(`the callback body exceeds maxBodySize (${maxBodySize} bytes)`));
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
    return route(correlationId, payload, request);
  };

  const listener = async (request: Req, response: ServerResponse): Promise<void> => {
    let result: CallbackAnswer<Res>;
    try {
      result = await decide(request);
    } catch (error) {
      // The client went away mid-body: nobody is left to answer.
      if (request.destroyed && !request.complete) return;
      result = answer('failed', undefined, undefined, false, error);
    }
    send(request, response, result);
    told(result, request);
  };

  return Object.assign(listener, {
    async route(correlationId: unknown, payload: Res, request?: Req): Promise<CallbackAnswer<Res>> {
      const invalid = correlationIdError('callback', correlationId);
      if (invalid !== undefined) return told(answer('invalid', undefined, undefined, false, invalid), request);
      return told(await route(correlationId as string, payload, request), request);
    },
  });
}

/**
 * A correlation-ID extractor that reads a request header (the first value
 * when it repeats).
 *
 * @param name - The header name, any case.
 * @returns The extractor, for {@link CallbackListenerOptions.getCorrelationId}.
 * @throws {@link index!InvalidArgumentError} for an empty name.
 *
 * @example
 * ```ts
 * createCallbackListener(controller, { getCorrelationId: fromHeader('x-request-id') });
 * ```
 */
export function fromHeader(name: string): (request: IncomingMessage) => string | undefined {
  const key = checkString('header name', name).toLowerCase();
  // headersDistinct, not headers: Node joins a repeated custom header's
  // values into one string ("a, b"), which is no correlation ID.
  return (request) => request.headersDistinct[key]?.[0];
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
 * @throws {@link index!InvalidArgumentError} for a pattern without a `:name` segment.
 *
 * @example
 * ```ts
 * createCallbackListener(controller, { getCorrelationId: fromPath('/partners/:partner/callbacks/:id') });
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

const CALLBACK_KEYS = optionKeys<CallbackListenerOptions<unknown>>({
  getCorrelationId: true,
  parse: true,
  maxBodySize: true,
  authorize: true,
  compensate: true,
  compensatedTag: true,
  overwrite: true,
  onAnswer: true,
});

function answer<Res>(
  outcome: CallbackOutcome,
  correlationId: string | undefined,
  payload: NoInfer<Res> | undefined,
  compensated: boolean,
  ...error: [error?: unknown]
): CallbackAnswer<Res> {
  return withRouteDetails({ statusCode: CALLBACK_STATUS[outcome], outcome }, correlationId, payload, compensated, error);
}

/**
 * Reads the body, at most `limit` bytes; `undefined` when it is larger. A
 * declared `content-length` over the limit is refused before reading.
 */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  if (request.readableEnded) {
    return Promise.reject(new Error('the request body was already read, by a body parser mounted before the callback listener; mount it first, or use listener.route()'));
  }
  const declared = Number(request.headers['content-length']);
  if (declared > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        request.pause();
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
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('close', onClose);
  });
}

function send(request: IncomingMessage, response: ServerResponse, result: CallbackAnswer<unknown>): void {
  if (response.headersSent || response.destroyed) return;
  const body: Record<string, unknown> = { outcome: result.outcome };
  // Client errors say what was wrong; server errors keep their details in.
  if (result.statusCode < 500 && result.error instanceof Error) body['error'] = result.error.message;
  const text = JSON.stringify(body);
  response.statusCode = result.statusCode;
  response.setHeader('content-type', 'application/json; charset=utf-8');
  response.setHeader('content-length', Buffer.byteLength(text));
  response.setHeader('cache-control', 'no-store');
  if (result.outcome === 'too-large' && !request.complete) {
    // The rest of an oversized body is not worth reading: close afterwards.
    response.setHeader('connection', 'close');
    response.end(text, () => request.destroy());
    return;
  }
  if (result.outcome === 'unavailable') response.setHeader('retry-after', '1');
  response.end(text);
}
