import {
  context,
  defaultTextMapGetter,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TextMapPropagator,
  type Tracer,
} from '@opentelemetry/api';
import { describeCause } from '../_describe.js';
import { CHANNELS, type ExchangeTraceContext, type RequestMessage, type ResponseMessage } from '../events.js';
import type { Exchange } from '../exchange.js';
import type { TraceCarrier } from '../types.js';
import { ContextStore } from './_context-store.js';
import { ATTR, EVENT, SPAN } from './_names.js';
import { exchangeEvent, RESPONSE_CHANNELS, type Subscriptions } from './_subscriptions.js';

/**
 * The spans of one instrumentation: one per exchange, active for its
 * operation, with an event per request and per reply routed to it; and one
 * per reply processed, linked to its request.
 *
 * Both are `INTERNAL`: an exchange is a wait inside this process, and the
 * wire it waits on — an HTTP call, an AMQP publish and consume — gets its
 * `CLIENT`, `PRODUCER` and `CONSUMER` spans from that transport's
 * instrumentation. A `CLIENT` exchange span would claim a remote call that
 * it does not make (backends draw a dependency for each), and nest the
 * transport's own client spans under a second one.
 */
export class ExchangeSpans {
  readonly #tracer: Tracer;
  readonly #propagator: Pick<TextMapPropagator, 'extract'>;
  /** The span of each exchange traced and not ended yet. */
  readonly #open = new Map<Exchange<any, any>, Span>();

  constructor(tracer: Tracer, propagator: Pick<TextMapPropagator, 'extract'>, subscriptions: Subscriptions) {
    this.#tracer = tracer;
    this.#propagator = propagator;
    // Started in the store's transform, not on `start`: runStores() asks the
    // transform for the context first, and publishes `start` inside it.
    subscriptions.bindStart(new ContextStore(), (trace) => this.#start(trace), () => context.active());
    subscriptions.on(exchangeEvent('asyncEnd'), (trace: ExchangeTraceContext) => this.#end(trace));
    subscriptions.on(CHANNELS.requestRegistered, (message: RequestMessage) => this.#request(message));
    for (const name of RESPONSE_CHANNELS) subscriptions.on(name, (message: ResponseMessage) => this.#response(message));
  }

  /** The span of `exchange`, while it is open and traced. */
  spanOf(exchange: Exchange<any, any>): Span | undefined {
    return this.#open.get(exchange);
  }

  /** Ends the spans of the exchanges still open: once unsubscribed, nothing else would. */
  endOpen(): void {
    for (const span of this.#open.values()) span.end();
    this.#open.clear();
  }

  /** The exchange's span, a child of the caller's context; the context the operation runs in. */
  #start({ exchange }: ExchangeTraceContext): Context {
    const parent = context.active();
    const span = this.#tracer.startSpan(SPAN.exchange, { kind: SpanKind.INTERNAL, attributes: { [ATTR.exchangeId]: exchange.id } }, parent);
    this.#open.set(exchange, span);
    return trace.setSpan(parent, span);
  }

  #end({ exchange, result, error }: ExchangeTraceContext): void {
    const span = this.#open.get(exchange);
    if (span === undefined || result === undefined) return;
    this.#open.delete(exchange);
    span.setAttributes({
      [ATTR.exchangeStatus]: result.status,
      [ATTR.exchangeRequests]: result.entries.length,
      [ATTR.exchangeUnanswered]: result.unanswered.length,
    });
    if (result.status !== 'completed') {
      span.setAttribute(ATTR.errorType, result.status);
      if (result.reason instanceof Error) span.recordException(result.reason);
      span.setStatus({ code: SpanStatusCode.ERROR, message: describeCause(error ?? result.status) });
    }
    span.end();
  }

  #request({ exchange, correlationId }: RequestMessage): void {
    this.#open.get(exchange)?.addEvent(EVENT.request, { [ATTR.conversationId]: correlationId });
  }

  /**
   * A reply processed: a span in the context that registered it (the
   * consumer's), linked to the context its request went out with, and an
   * event on its exchange's span when that is open here.
   */
  #response({ correlationId, outcome, exchange, requestCarrier }: ResponseMessage): void {
    const exchangeSpan = exchange === undefined ? undefined : this.#open.get(exchange);
    exchangeSpan?.addEvent(EVENT.response, { [ATTR.conversationId]: correlationId, [ATTR.responseOutcome]: outcome });
    const attributes: Attributes = { [ATTR.conversationId]: correlationId, [ATTR.responseOutcome]: outcome };
    if (exchange !== undefined) attributes[ATTR.exchangeId] = exchange.id;
    const link = this.#linkTo(requestCarrier, exchangeSpan);
    const options = link === undefined ? { kind: SpanKind.INTERNAL, attributes } : { kind: SpanKind.INTERNAL, attributes, links: [link] };
    this.#tracer.startSpan(SPAN.response, options, context.active()).end();
  }

  /**
   * The request's context, as its carrier holds it; without a carrier, the
   * exchange's span, which the request was made under.
   */
  #linkTo(carrier: TraceCarrier | undefined, exchangeSpan: Span | undefined): Link | undefined {
    if (carrier !== undefined) {
      const linked = trace.getSpanContext(this.#propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter));
      if (linked !== undefined && isSpanContextValid(linked)) return { context: linked };
    }
    const own = exchangeSpan?.spanContext();
    return own !== undefined && isSpanContextValid(own) ? { context: own } : undefined;
  }
}
