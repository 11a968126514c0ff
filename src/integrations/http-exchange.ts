import type { ServerResponse } from 'node:http';
import type { Controller } from '../controller.js';
import { InvalidArgumentError } from '../errors.js';
import type { Exchange } from '../exchange.js';
import type { ExchangeResult, ExchangeStatus } from '../types.js';
import { describe } from '../_describe.js';
import { checkFunction, checkOptionsObject, checkTimeout, optionKeys } from '../_validate.js';

/**
 * The HTTP status an exchange handler ({@link expressExchange},
 * {@link fastifyExchange}) answers when the exchange serving a request
 * ended without completing. Its unanswered IDs are tagged for rollback
 * either way, so a reply that comes later is `rolled-back`.
 *
 * | status of the exchange | HTTP status |
 * |---|---|
 * | `timed-out` | 504 Gateway Timeout |
 * | `closed` (the controller is shutting down) | 503 Service Unavailable, with `retry-after` |
 * | `aborted` (the client closed the connection) | 499, as nginx logs it: nothing reaches the client, which is gone |
 */
export const UNANSWERED_STATUS: Readonly<Record<Exclude<ExchangeStatus, 'completed'>, number>> = {
  'timed-out': 504,
  closed: 503,
  aborted: 499,
};

/** What {@link expressExchange} and {@link fastifyExchange} need of a controller: `synchronize`. */
export type ExchangeTarget<Req, Res> = Pick<Controller<Req, Res>, 'synchronize'>;

/**
 * Options of {@link expressExchange} and {@link fastifyExchange}.
 *
 * @typeParam Request - Type of the framework's request objects.
 * @typeParam Reply - Type of the framework's response (Express) or reply (Fastify) objects.
 */
export interface ExchangeHandlerOptions<Request, Reply> {
  /**
   * Milliseconds the exchange may take before the answer is 504.
   * @defaultValue the controller's `timeout` (30 s unless set)
   */
  timeout?: number;
  /**
   * Answers a request whose exchange timed out or was closed while the
   * client still waits, instead of the default JSON (`{"status":"timed-out"}`
   * with the status of {@link UNANSWERED_STATUS}). With Fastify, what it
   * returns is sent, as a route handler's return value is.
   */
  onUnanswered?: (result: ExchangeResult, request: Request, reply: Reply) => unknown;
}

/** The outcome of {@link serveExchange}. @internal */
export interface ServedExchange<Req, Res, A> {
  readonly result: ExchangeResult<Req, Res>;
  /** What the operation resolved with; `undefined` when the exchange ended first. */
  readonly answer: A | undefined;
}

/** The checked options of an exchange handler. @internal */
export interface ExchangeHandlerSettings<Request, Reply> {
  readonly timeout: number | undefined;
  readonly onUnanswered: ExchangeHandlerOptions<Request, Reply>['onUnanswered'];
}

/**
 * Checks an exchange handler's arguments once, when the handler is made.
 * @internal
 */
export function exchangeHandlerSettings<Request, Reply>(
  controller: unknown,
  operation: unknown,
  options: ExchangeHandlerOptions<Request, Reply> | undefined,
): ExchangeHandlerSettings<Request, Reply> {
  if (typeof (controller as Partial<Record<string, unknown>> | null)?.['synchronize'] !== 'function') {
    throw new InvalidArgumentError(`controller must be an rrxc Controller, got ${describe(controller)}`);
  }
  if (typeof operation !== 'function') throw new InvalidArgumentError(`the exchange handler needs an operation function, got ${describe(operation)}`);
  const given = checkOptionsObject(options, 'exchange handler options', HANDLER_KEYS);
  return {
    timeout: given.timeout === undefined ? undefined : checkTimeout('timeout', given.timeout),
    onUnanswered: checkFunction('onUnanswered', given.onUnanswered),
  };
}

/**
 * Serves one HTTP request with an exchange: runs `operation` in an exchange
 * (as `controller.synchronize` does, so it always ends and its unanswered
 * IDs are tagged) bound to the response's lifetime — it aborts when the
 * connection closes before the response finished, since `IncomingMessage`
 * has no `signal` and its own `close` event fires as soon as the body was
 * read. Rejects only when `operation` failed while its exchange was open;
 * an operation that fails because the exchange ended (its `response`
 * rejected, a `fetch` on `xc.signal` aborted) leaves the result to say why.
 * @internal
 */
export async function serveExchange<Req, Res, A>(
  controller: ExchangeTarget<Req, Res>,
  response: ServerResponse,
  timeout: number | undefined,
  operation: (exchange: Exchange<Req, Res>) => A | PromiseLike<A>,
): Promise<ServedExchange<Req, Res, A>> {
  const client = new AbortController();
  const onClose = (): void => {
    if (!response.writableFinished) client.abort(new DOMException('the client closed the connection before the answer', 'AbortError'));
  };
  if (response.destroyed) onClose();
  else response.once('close', onClose);
  let answer: A | undefined;
  try {
    const result = await controller.synchronize(timeout === undefined ? { signal: client.signal } : { signal: client.signal, timeout }, async (exchange) => {
      try {
        answer = await operation(exchange);
      } catch (error) {
        if (exchange.state === 'ended' && exchange.status !== 'completed') return;
        throw error;
      }
    });
    return { result, answer };
  } finally {
    response.off('close', onClose);
  }
}

/**
 * The status, headers and JSON body answering an exchange that ended
 * without completing: `{"status":"timed-out"}`.
 * @internal
 */
export function unansweredAnswer(result: ExchangeResult): { statusCode: number; headers: Record<string, string>; body: string } {
  const status = result.status === 'completed' ? 'closed' : result.status;
  const body = JSON.stringify({ status });
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
  };
  if (status === 'closed') headers['retry-after'] = '1';
  return { statusCode: UNANSWERED_STATUS[status], headers, body };
}

const HANDLER_KEYS = optionKeys<ExchangeHandlerOptions<unknown, unknown>>({ timeout: true, onUnanswered: true });
