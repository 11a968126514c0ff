import { hasSubscribers } from 'node:diagnostics_channel';
import { readdirSync, readFileSync } from 'node:fs';
import { metrics, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import { instrument } from '../../src/otel/index.js';
import { closeControllersAfterEach, make } from '../helpers/controllers.js';
import { instrumented, points, telemetry, withGlobalContext } from './setup.js';

closeControllersAfterEach();
withGlobalContext();

/** The channels rrxc/otel reads, written out rather than read from the source. */
const READ = [
  'tracing:rrxc:exchange:start',
  'tracing:rrxc:exchange:asyncEnd',
  'rrxc:request:registered',
  'rrxc:response:delivered',
  'rrxc:response:duplicate',
  'rrxc:response:overwritten',
  'rrxc:response:rolled-back',
  'rrxc:response:unmatched',
  'rrxc:rollback:tagged',
];

/** Every other channel rrxc publishes on. */
const NOT_READ = [
  'tracing:rrxc:exchange:end',
  'tracing:rrxc:exchange:asyncStart',
  'tracing:rrxc:exchange:error',
  'rrxc:exchange:created',
  'rrxc:exchange:ended',
  'rrxc:tag:evicted',
  'rrxc:hook:error',
  'rrxc:tag-store:error',
];

const subscribed = (): string[] => [...READ, ...NOT_READ].filter((name) => hasSubscribers(name));

/** An exchange with one answered and one unanswered request, closed: every kind of event. */
async function runAnExchange(): Promise<void> {
  const controller = make();
  const result = await controller.synchronize({}, async (xc) => {
    const { correlationId } = xc.registerRequest();
    xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'one' });
    xc.close();
  });
  expect(result.unanswered).toHaveLength(1);
  await controller.registerResponse({ correlationId: result.unanswered[0]!, message: 'late' });
}

describe('instrument()', () => {
  it('subscribes to the channels it reads, and uninstrument() leaves no subscriber on any rrxc channel', () => {
    expect(subscribed()).toEqual([]);
    const { tracerProvider, meterProvider } = telemetry();
    const instrumentation = instrument({ tracerProvider, meterProvider });
    expect(subscribed()).toEqual(READ);
    instrumentation.uninstrument();
    expect(subscribed()).toEqual([]);
  });

  it('makes no span and measures nothing after uninstrument()', async () => {
    const sdk = instrumented();
    await runAnExchange();
    const spans = sdk.spans().length;
    const before = await sdk.collect();
    expect([spans, points(before.get('rrxc.responses')).length]).toEqual([3, 2]);
    sdk.instrumentation.uninstrument();
    await runAnExchange();
    expect(sdk.spans()).toHaveLength(spans);
    const after = await sdk.collect();
    for (const name of ['rrxc.responses', 'rrxc.exchange.duration', 'rrxc.exchange.active', 'rrxc.rollback.tags']) {
      expect([name, points(after.get(name))]).toEqual([name, points(before.get(name))]);
    }
  });

  it('ends the spans of exchanges still open when uninstrumented, and counts them down', async () => {
    const sdk = instrumented();
    const controller = make();
    const xc = controller.createExchange();
    expect(points((await sdk.collect()).get('rrxc.exchange.active'))).toEqual([[{}, 1]]);
    sdk.instrumentation.uninstrument();
    expect(sdk.span('rrxc exchange').attributes).toEqual({ 'rrxc.exchange.id': xc.id });
    expect(points((await sdk.collect()).get('rrxc.exchange.active'))).toEqual([[{}, 0]]);
    expect(sdk.instrumentation.spanOf(xc)).toBeUndefined();
  });

  it('uninstruments once: again, or by Symbol.dispose, does nothing more', async () => {
    const sdk = instrumented();
    const controller = make();
    controller.createExchange();
    sdk.instrumentation[Symbol.dispose]();
    expect(subscribed()).toEqual([]);
    sdk.instrumentation.uninstrument();
    expect(sdk.spans()).toHaveLength(1);
    expect(points((await sdk.collect()).get('rrxc.exchange.active'))).toEqual([[{}, 0]]);
  });

  it('uses the global tracer provider, meter provider and propagator when given none', async () => {
    const sdk = telemetry();
    trace.setGlobalTracerProvider(sdk.tracerProvider);
    metrics.setGlobalMeterProvider(sdk.meterProvider);
    try {
      const instrumentation = instrument();
      try {
        const controller = make();
        const xc = controller.createExchange();
        const carrier: Record<string, string> = {};
        propagation.inject(trace.setSpan(ROOT_CONTEXT, instrumentation.spanOf(xc)!), carrier);
        const { correlationId } = xc.registerRequest({ carrier });
        await controller.registerResponse({ correlationId, message: 'done' });
        await xc.wait();
      } finally {
        instrumentation.uninstrument();
      }
      expect(sdk.span('rrxc response').links.map((l) => l.context.spanId)).toEqual([sdk.span('rrxc exchange').spanContext().spanId]);
      expect(points((await sdk.collect()).get('rrxc.responses'))).toEqual([[{ 'rrxc.response.outcome': 'delivered' }, 1]]);
    } finally {
      trace.disable();
      metrics.disable();
    }
  });

  it.each([
    ['options that are not an object', 'tracing', /^instrument options must be an object, got "tracing" \(string of 7\)$/],
    ['an unknown option', { tracer: {} }, /^unknown option `tracer` in instrument options; known: tracerProvider, meterProvider, propagator$/],
    ['a tracer provider without getTracer', { tracerProvider: {} }, /^tracerProvider must have the methods getTracer; missing: getTracer$/],
    ['a meter provider without getMeter', { meterProvider: { getTracer() {} } }, /^meterProvider must have the methods getMeter; missing: getMeter$/],
    ['a propagator without extract', { propagator: { inject() {} } }, /^propagator must have the methods extract; missing: extract$/],
  ])('refuses %s with an InvalidArgumentError, subscribing nothing', (_, options, message) => {
    let error: unknown;
    try {
      instrument(options as never);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ code: 'ERR_RRXC_INVALID_ARGUMENT', message: expect.stringMatching(message) });
    expect(subscribed()).toEqual([]);
  });

  it('refuses spanOf() something that is not an exchange', () => {
    const { instrumentation } = instrumented();
    expect(() => instrumentation.spanOf('xc-1' as never)).toThrow(InvalidArgumentError);
    expect(() => instrumentation.spanOf(null as never)).toThrow(/^spanOf needs an exchange, got `null` \(null\)$/);
  });
});

describe('src/otel/', () => {
  const SRC = new URL('../../src/', import.meta.url);
  const files = readdirSync(new URL('otel/', SRC)).filter((f) => f.endsWith('.ts'));

  it('imports of the package only top-level files, and no _ module of theirs but _validate.ts and _describe.ts', () => {
    const imports = files.flatMap((file) =>
      [...readFileSync(new URL(`otel/${file}`, SRC), 'utf8').matchAll(/\bfrom\s+'(\.[^']+)'/g)].map((m) => [file, m[1]!] as const),
    );
    expect(imports.length).toBeGreaterThan(10);
    const wrong = imports.filter(([, specifier]) => {
      if (specifier.startsWith('./')) return specifier.slice(2).includes('/');
      const parts = /^\.\.\/([^/]+)$/.exec(specifier);
      return parts === null || (parts[1]!.startsWith('_') && !['_validate.js', '_describe.js'].includes(parts[1]!));
    });
    expect(wrong).toEqual([]);
  });

  it('is not imported by the core: @opentelemetry/api stays an optional peer', () => {
    const core = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
      .map((p) => p.split('\\').join('/'))
      .filter((p) => p.endsWith('.ts') && !p.startsWith('otel/'));
    const offending = core.filter((p) => /from\s+'(?:\.\.?\/)+(?:otel\/|[^']*@opentelemetry)|from\s+'@opentelemetry\//.test(readFileSync(new URL(p, SRC), 'utf8')));
    expect(offending).toEqual([]);
  });
});
