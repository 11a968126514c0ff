// What the rrxc/otel tests share: the SDK wired to in-memory ends, the
// global context manager and propagator a real application registers, and
// look-ups over what was exported.
import { context, propagation, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader, type DataPoint, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { instrument, type InstrumentOptions, type Instrumentation } from '../../src/otel/index.js';

/** A reader the test collects from when it wants, with no timer of its own. */
class CollectingReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** An SDK tracer and meter provider, exporting to memory. */
export interface Telemetry {
  readonly tracerProvider: BasicTracerProvider;
  readonly meterProvider: MeterProvider;
  readonly exporter: InMemorySpanExporter;
  /** The spans ended so far, by name. */
  spans(name?: string): ReadableSpan[];
  /** The one ended span of `name`: fails when there are none or several. */
  span(name: string): ReadableSpan;
  /** The metrics collected now, by instrument name. */
  collect(): Promise<Map<string, MetricData>>;
}

export function telemetry(): Telemetry {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = (name?: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => name === undefined || s.name === name);
  return {
    tracerProvider,
    meterProvider,
    exporter,
    spans,
    span(name) {
      const found = spans(name);
      if (found.length !== 1) throw new Error(`expected one span named ${name}, got ${found.length}`);
      return found[0]!;
    },
    async collect() {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) throw new AggregateError(errors);
      return new Map(resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).map((metric) => [metric.descriptor.name, metric]));
    },
  };
}

/** The data points of a metric as `[attributes, value]` pairs, sorted by their attributes. */
export function points<T>(metric: MetricData | undefined): [Attributes, T][] {
  if (metric === undefined) return [];
  return (metric.dataPoints as DataPoint<T>[])
    .map((p): [Attributes, T] => [p.attributes, p.value])
    .sort(([a], [b]) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/**
 * Call once at the top of a test file: registers the AsyncLocalStorage
 * context manager and the W3C propagator globally, as the Node SDK does,
 * and uninstruments whatever `instrumented()` started after each test.
 */
export function withGlobalContext(): void {
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  afterAll(() => {
    context.disable();
    propagation.disable();
  });
  afterEach(() => {
    for (const instrumentation of running.splice(0)) instrumentation.uninstrument();
  });
}

const running: Instrumentation[] = [];

/** `instrument()` onto fresh in-memory telemetry, uninstrumented after the test. */
export function instrumented(options: InstrumentOptions = {}): Telemetry & { instrumentation: Instrumentation } {
  const sdk = telemetry();
  const instrumentation = instrument({ tracerProvider: sdk.tracerProvider, meterProvider: sdk.meterProvider, ...options });
  running.push(instrumentation);
  return { ...sdk, instrumentation };
}
