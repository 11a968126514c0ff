import { readFileSync } from 'node:fs';
import { context, diag, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type DiagLogger, type SpanContext, type TextMapPropagator } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/index.js';
import { clock, closeControllersAfterEach, controllers, make, resetClock } from '../helpers/controllers.js';
import { InProcessBackplane } from '../helpers/in-process-backplane.js';
import { instrumented, withGlobalContext } from './setup.js';

closeControllersAfterEach();
withGlobalContext();

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Trace and span ID of a span context: what a link or a parent must match. */
const ids = (sc: SpanContext | undefined): { traceId: string; spanId: string } | undefined =>
  sc === undefined ? undefined : { traceId: sc.traceId, spanId: sc.spanId };

describe('the span of an exchange', () => {
  it('is one INTERNAL span for a completed exchange, with its ID, status and counts, an event per request and per reply', async () => {
    const sdk = instrumented();
    const controller = make();
    let correlationId = '';
    const result = await controller.synchronize({}, (xc) => {
      correlationId = xc.registerRequest({ message: 'job' }).correlationId;
      void controller.registerResponse({ correlationId, message: 'done' });
    });
    expect(result.status).toBe('completed');
    const span = sdk.span('rrxc exchange');
    expect(sdk.spans('rrxc exchange')).toHaveLength(1);
    expect(span.kind).toBe(SpanKind.INTERNAL);
    expect(span.instrumentationScope).toMatchObject({ name: 'rrxc', version: VERSION });
    expect(span.attributes).toEqual({
      'rrxc.exchange.id': result.exchangeId,
      'rrxc.exchange.status': 'completed',
      'rrxc.exchange.requests': 1,
      'rrxc.exchange.unanswered': 0,
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.events.map((e) => [e.name, e.attributes])).toEqual([
      ['rrxc.request', { 'messaging.message.conversation_id': correlationId }],
      ['rrxc.response', { 'messaging.message.conversation_id': correlationId, 'rrxc.response.outcome': 'delivered' }],
    ]);
  });

  it('ends with status ERROR, error.type and the unanswered count when the exchange times out', async () => {
    const sdk = instrumented();
    const controller = make();
    const xc = controller.createExchange({ timeout: 50 });
    const answered = xc.registerRequest();
    xc.registerRequest();
    await controller.registerResponse({ correlationId: answered.correlationId, message: 'one' });
    clock.advance(50);
    await xc.wait();
    const span = sdk.span('rrxc exchange');
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: expect.stringContaining('(timed-out)') });
    expect(span.attributes).toMatchObject({
      'rrxc.exchange.status': 'timed-out',
      'rrxc.exchange.requests': 2,
      'rrxc.exchange.unanswered': 1,
      'error.type': 'timed-out',
    });
  });

  it('records the error of an operation that threw as an exception, status closed', async () => {
    const sdk = instrumented();
    const controller = make();
    await expect(
      controller.synchronize({}, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const span = sdk.span('rrxc exchange');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['rrxc.exchange.status']).toBe('closed');
    expect(span.events.map((e) => [e.name, e.attributes?.['exception.message']])).toEqual([['exception', 'boom']]);
  });

  it('is a child of the caller\'s span, and the parent of spans made in synchronize()\'s operation, across awaits', async () => {
    const sdk = instrumented();
    const tracer = sdk.tracerProvider.getTracer('test');
    const controller = make();
    const outer = tracer.startSpan('http request');
    let inside: SpanContext | undefined;
    await context.with(trace.setSpan(context.active(), outer), () =>
      controller.synchronize({}, async (xc) => {
        await Promise.resolve();
        await new Promise((resolve) => setImmediate(resolve));
        tracer.startSpan('publish').end();
        inside = trace.getActiveSpan()?.spanContext();
        xc.close();
      }),
    );
    outer.end();
    const exchange = sdk.span('rrxc exchange');
    expect(ids(sdk.span('publish').parentSpanContext)).toEqual(ids(exchange.spanContext()));
    expect(ids(inside)).toEqual(ids(exchange.spanContext()));
    expect(ids(exchange.parentSpanContext)).toEqual(ids(outer.spanContext()));
    expect(trace.getActiveSpan()).toBeUndefined();
  });

  it('is the parent of spans made in request()\'s send', async () => {
    const sdk = instrumented();
    const tracer = sdk.tracerProvider.getTracer('test');
    const controller = make();
    const answer = await controller.request('ping', (correlationId) => {
      tracer.startSpan('publish').end();
      void controller.registerResponse({ correlationId, message: 'pong' });
    });
    expect(answer).toBe('pong');
    expect(ids(sdk.span('publish').parentSpanContext)).toEqual(ids(sdk.span('rrxc exchange').spanContext()));
  });

  it('is traced for createExchange() too, and spanOf() gives it while the exchange is open', async () => {
    const sdk = instrumented();
    const controller = make();
    const xc = controller.createExchange();
    const open = sdk.instrumentation.spanOf(xc);
    expect(open).toBeDefined();
    expect(sdk.spans()).toEqual([]);
    xc.close();
    await xc.wait();
    expect(ids(sdk.span('rrxc exchange').spanContext())).toEqual(ids(open!.spanContext()));
    expect(sdk.instrumentation.spanOf(xc)).toBeUndefined();
  });

  it('is not made for an exchange created before instrument()', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const sdk = instrumented();
    expect(sdk.instrumentation.spanOf(xc)).toBeUndefined();
    xc.close();
    await xc.wait();
    expect(sdk.spans('rrxc exchange')).toEqual([]);
  });

  it('is ended, already aborted, for an exchange whose signal had aborted', async () => {
    const sdk = instrumented();
    const controller = make();
    const xc = controller.createExchange({ signal: AbortSignal.abort(new Error('gone')) });
    await xc.wait();
    const span = sdk.span('rrxc exchange');
    expect(span.attributes['rrxc.exchange.status']).toBe('aborted');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.events.map((e) => e.attributes?.['exception.message'])).toEqual(['gone']);
  });
});

describe('the span of a reply', () => {
  it('is a child of the consumer\'s context, linked to the request\'s context injected into its carrier', async () => {
    const sdk = instrumented();
    const tracer = sdk.tracerProvider.getTracer('test');
    const controller = make();
    const xc = controller.createExchange();
    let correlationId = '';
    const producer = tracer.startSpan('publish');
    context.with(trace.setSpan(ROOT_CONTEXT, producer), () => {
      const carrier: Record<string, string> = {};
      propagation.inject(context.active(), carrier);
      correlationId = xc.registerRequest({ message: 'job', carrier }).correlationId;
    });
    producer.end();
    // The consumer of the replies: another trace, as a reply queue's consumer is.
    const consumer = tracer.startSpan('consume', {}, ROOT_CONTEXT);
    const outcome = await context.with(trace.setSpan(ROOT_CONTEXT, consumer), () => controller.registerResponse({ correlationId, message: 'done' }));
    consumer.end();
    expect(outcome).toBe('delivered');
    const reply = sdk.span('rrxc response');
    expect(reply.kind).toBe(SpanKind.INTERNAL);
    expect(reply.attributes).toEqual({
      'messaging.message.conversation_id': correlationId,
      'rrxc.response.outcome': 'delivered',
      'rrxc.exchange.id': xc.id,
    });
    expect(ids(reply.parentSpanContext)).toEqual(ids(consumer.spanContext()));
    expect(reply.links.map((link) => ids(link.context))).toEqual([ids(producer.spanContext())]);
    expect(reply.spanContext().traceId).not.toBe(producer.spanContext().traceId);
  });

  it('is linked to the request\'s context when the reply reaches another controller, through a backplane', async () => {
    const planeA = new InProcessBackplane();
    const planeB = new InProcessBackplane();
    InProcessBackplane.join([planeA, planeB]);
    resetClock();
    const a = new Controller<string, string>({ backplane: planeA, clock });
    const b = new Controller<string, string>({ backplane: planeB, clock });
    controllers.push(a, b);
    const sdk = instrumented();
    let correlationId = '';
    let requestContext: SpanContext | undefined;
    const result = await a.synchronize({}, async (xc) => {
      const carrier: Record<string, string> = {};
      propagation.inject(context.active(), carrier);
      requestContext = trace.getActiveSpan()?.spanContext();
      correlationId = xc.registerRequest({ message: 'job', carrier }).correlationId;
      expect(await context.with(ROOT_CONTEXT, () => b.registerResponse({ correlationId, message: 'via B' }))).toBe('delivered');
    });
    expect(result.status).toBe('completed');
    // A, which owns the exchange, publishes its delivery with the carrier; B, which only forwarded, without.
    const replies = sdk.spans('rrxc response');
    expect(replies.map((s) => [s.attributes['rrxc.response.outcome'], s.attributes['rrxc.exchange.id'], s.links.map((l) => ids(l.context))])).toEqual([
      ['delivered', result.exchangeId, [ids(requestContext)]],
      ['delivered', undefined, []],
    ]);
    expect(ids(requestContext)).toEqual(ids(sdk.span('rrxc exchange').spanContext()));
  });

  it('is linked to the exchange\'s span when its request went without a carrier', async () => {
    const sdk = instrumented();
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'done' });
    await xc.wait();
    expect(sdk.span('rrxc response').links.map((l) => ids(l.context))).toEqual([ids(sdk.span('rrxc exchange').spanContext())]);
  });

  it('reads the carrier with the propagator it is given', async () => {
    const request: SpanContext = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: TraceFlags.SAMPLED, isRemote: true };
    const propagator: TextMapPropagator = {
      inject: () => {},
      extract: (ctx, carrier: Record<string, string>) => (carrier['x-span'] === 'the request' ? trace.setSpanContext(ctx, request) : ctx),
      fields: () => ['x-span'],
    };
    const sdk = instrumented({ propagator });
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest({ carrier: { 'x-span': 'the request' } });
    await controller.registerResponse({ correlationId, message: 'done' });
    expect(sdk.span('rrxc response').links.map((l) => ids(l.context))).toEqual([ids(request)]);
  });

  it('is made for every outcome, and without a link when nothing is known of the request', async () => {
    const sdk = instrumented();
    const controller = make();
    const xc = controller.createExchange({ timeout: 10 });
    const late = xc.registerRequest({ carrier: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    const open = controller.createExchange();
    const answered = open.registerRequest();
    clock.advance(10);
    await xc.wait();
    const outcomes = [
      await controller.registerResponse({ correlationId: late.correlationId, message: 'late' }),
      await controller.registerResponse({ correlationId: 'nobody', message: 'stray' }),
      await controller.registerResponse({ correlationId: answered.correlationId, message: 'first' }),
      await controller.registerResponse({ correlationId: answered.correlationId, message: 'again' }),
      await controller.registerResponse({ correlationId: answered.correlationId, message: 'newer', overwrite: true }),
    ];
    expect(outcomes).toEqual(['rolled-back', 'unmatched', 'delivered', 'duplicate', 'overwritten']);
    const openSpan = sdk.instrumentation.spanOf(open)!.spanContext();
    expect(sdk.spans('rrxc response').map((s) => [s.attributes['rrxc.response.outcome'], s.links.map((l) => ids(l.context))])).toEqual([
      ['rolled-back', []],
      ['unmatched', []],
      ['delivered', [ids(openSpan)]],
      ['duplicate', [ids(openSpan)]],
      ['overwritten', [ids(openSpan)]],
    ]);
  });
});

describe('a failing tracer', () => {
  it('breaks no exchange: the failure goes to the diag logger', async () => {
    const logged: unknown[][] = [];
    const logger: DiagLogger = { error: (...args) => void logged.push(args), warn() {}, info() {}, debug() {}, verbose() {} };
    diag.setLogger(logger);
    try {
      const failing = {
        getTracer: () => ({
          startSpan: () => {
            throw new Error('tracer down');
          },
          startActiveSpan: () => {
            throw new Error('tracer down');
          },
        }),
      };
      instrumented({ tracerProvider: failing });
      const controller = make();
      const result = await controller.synchronize({}, (xc) => {
        const { correlationId } = xc.registerRequest();
        void controller.registerResponse({ correlationId, message: 'done' });
      });
      expect(result.status).toBe('completed');
      expect(logged.map(([message, error]) => [message, (error as Error).message])).toEqual([
        ['rrxc/otel: starting the span of an exchange failed', 'tracer down'],
        ['rrxc/otel: the listener of rrxc:response:delivered failed', 'tracer down'],
      ]);
    } finally {
      diag.disable();
    }
  });
});
