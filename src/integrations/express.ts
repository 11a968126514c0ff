// Express, typed structurally: rrxc does not depend on express, and its
// published types name nothing of it. Express's Request and Response are
// subtypes of node:http's, which is all this needs.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Exchange } from '../exchange.js';
import { exchangeHandlerSettings, serveExchange, unansweredAnswer, type ExchangeHandlerOptions, type ExchangeTarget } from './http-exchange.js';

/** The part of Express's `Response` an exchange handler uses: a `node:http` response with `json()`. */
export type ExpressResponseLike = ServerResponse & {
  /** Sends `body` as JSON, with Express's `json replacer` and `json spaces` settings. */
  json(body: unknown): unknown;
};

/** Express's `next`: hands an error to the error-handling middleware. */
export type ExpressNext = (error?: unknown) => void;

/**
 * An Express route handler that serves each request with an exchange: it
 * runs `operation` in an exchange bound to the request — the exchange
 * aborts when the client closes the connection, and times out after
 * `timeout` — and answers with what `operation` resolves with, once every
 * request registered in the exchange is answered.
 *
 * | how the exchange ended | the answer |
 * |---|---|
 * | `completed` | `res.json(answer)`; 204 when `operation` resolved with `undefined`; nothing more when `operation` sent a response itself |
 * | `timed-out` | 504 `{"status":"timed-out"}` (or `onUnanswered`) |
 * | `closed` (controller shutting down) | 503 `{"status":"closed"}` with `retry-after` (or `onUnanswered`) |
 * | `aborted` (client gone) | nothing: status 499 for the logs |
 * | `operation` threw while the exchange was open | `next(error)`, after the exchange was closed and its IDs tagged |
 *
 * The unanswered IDs of an exchange that did not complete are tagged for
 * rollback, so their late replies are `rolled-back`.
 *
 * @typeParam Req - The controller's request type.
 * @typeParam Res - The controller's reply type.
 * @typeParam A - What `operation` answers with.
 * @typeParam R - Express's `Request` (or `IncomingMessage`), as `operation` declares it.
 * @typeParam S - Express's `Response`.
 * @param controller - The controller that makes the exchanges.
 * @param operation - Registers the requests and sends them; resolves with
 *   the answer, typically after awaiting the `response` of its requests.
 * @param options - See {@link ExchangeHandlerOptions}.
 * @returns The handler, for `app.get()`, `app.post()`, a router.
 * @throws {@link rrxc!InvalidArgumentError} for a bad controller, operation or option.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { Controller } from 'rrxc';
 * import { createCallbackListener, expressExchange } from 'rrxc/integrations';
 *
 * type Quote = { amount: number; currency: string };
 * declare function askPartner(correlationId: string, callbackUrl: string): Promise<void>;
 *
 * const controller = new Controller<unknown, Quote>({ timeout: 5_000 });
 * const app = express();
 * app.post('/callbacks/:id', createCallbackListener(controller));
 * app.get('/quote', expressExchange(controller, async (xc) => {
 *   const { correlationId, response } = xc.registerRequest();
 *   await askPartner(correlationId, `https://shop.example/callbacks/${correlationId}`);
 *   return response; // the partner's callback, as JSON; 504 if it does not come in 5 s
 * }));
 * ```
 */
export function expressExchange<Req, Res, A, R extends IncomingMessage = IncomingMessage, S extends ExpressResponseLike = ExpressResponseLike>(
  controller: ExchangeTarget<Req, Res>,
  operation: (exchange: Exchange<Req, Res>, request: R, response: S) => A | PromiseLike<A>,
  options?: ExchangeHandlerOptions<R, S>,
): (request: R, response: S, next: ExpressNext) => Promise<void> {
  const { timeout, onUnanswered } = exchangeHandlerSettings(controller, operation, options);
  return async (request, response, next) => {
    try {
      const { result, answer } = await serveExchange(controller, response, timeout, (xc) => operation(xc, request, response));
      if (response.headersSent) return;
      if (result.status === 'completed') {
        if (answer === undefined) response.writeHead(204).end();
        else response.json(answer);
      } else if (result.status === 'aborted' || response.destroyed) {
        response.statusCode = 499;
      } else if (onUnanswered !== undefined) {
        await onUnanswered(result, request, response);
      } else {
        const { statusCode, headers, body } = unansweredAnswer(result);
        response.writeHead(statusCode, headers).end(body);
      }
    } catch (error) {
      next(error);
    }
  };
}
