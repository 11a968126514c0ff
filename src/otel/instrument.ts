import { createRequire } from 'node:module';
import { metrics, propagation, trace, type MeterProvider, type Span, type TextMapPropagator, type TracerProvider } from '@opentelemetry/api';
import { describe } from '../_describe.js';
import { checkMethods, checkOptionsObject, optionKeys } from '../_validate.js';
import { InvalidArgumentError } from '../errors.js';
import type { Exchange } from '../exchange.js';
import { Subscriptions } from './_subscriptions.js';
import { ExchangeMetrics } from './metrics.js';
import { ExchangeSpans } from './spans.js';

/** Options of {@link instrument}; every one is optional. */
export interface InstrumentOptions {
  /**
   * Where the spans go.
   * @defaultValue the global tracer provider, `trace.getTracerProvider()` —
   *   a proxy, so a provider registered after `instrument()` still gets them
   */
  tracerProvider?: TracerProvider;
  /**
   * Where the measurements go.
   * @defaultValue the global meter provider, `metrics.getMeterProvider()`,
   *   as it is when `instrument()` runs: the metrics API has no proxy, so
   *   register the SDK first, or pass its provider here
   */
  meterProvider?: MeterProvider;
  /**
   * Reads the carrier a request was registered with
   * (`registerRequest({ carrier })`) to link the span of its reply to it:
   * the propagator that injected it.
   * @defaultValue the global propagator, `propagation`
   */
  propagator?: TextMapPropagator;
}

const INSTRUMENT_KEYS = optionKeys<InstrumentOptions>({ tracerProvider: true, meterProvider: true, propagator: true });

/** A running instrumentation, as {@link instrument} returns it. */
export interface Instrumentation extends Disposable {
  /**
   * The span of an open exchange made while instrumented: to add
   * attributes to it, or to make it the parent of work done outside
   * `synchronize()`'s operation — an exchange from `createExchange()` is
   * traced, but the caller's code does not run in its context.
   *
   * @param exchange - An exchange of any controller.
   * @returns Its span; `undefined` once it ended, or if it was made before `instrument()` or after `uninstrument()`.
   * @throws {@link rrxc!InvalidArgumentError} when `exchange` is not an object.
   *
   * @example
   * ```ts
   * import { context, trace } from '@opentelemetry/api';
   * import { Controller } from 'rrxc';
   * import { instrument } from 'rrxc/otel';
   *
   * const instrumentation = instrument();
   * const controller = new Controller();
   * const xc = controller.createExchange();
   * const span = instrumentation.spanOf(xc);
   * await context.with(span === undefined ? context.active() : trace.setSpan(context.active(), span), async () => {
   *   xc.registerRequest({ message: 'job' });
   * });
   * ```
   */
  spanOf(exchange: Exchange<any, any>): Span | undefined;
  /**
   * Takes every subscription off rrxc's channels, so that rrxc publishes
   * nothing again and no span or measurement is made. The spans of
   * exchanges still open are ended as they are (without a status), and
   * `rrxc.exchange.active` is counted down by them. Calling it again does
   * nothing.
   */
  uninstrument(): void;
  /** Same as `uninstrument()`: `using instrumentation = instrument()`. */
  [Symbol.dispose](): void;
}

/**
 * Traces and measures every rrxc controller of the process with
 * OpenTelemetry, from rrxc's `diagnostics_channel` channels: a span per
 * exchange (made active for `synchronize()`'s and `request()`'s operation),
 * an event on it per request carrying `messaging.message.conversation_id`,
 * a span per reply processed linked to its request's context, and the
 * instruments `rrxc.responses`, `rrxc.exchange.duration`,
 * `rrxc.exchange.active` and `rrxc.rollback.tags`. Until it is called —
 * and after `uninstrument()` — rrxc publishes nothing and this costs
 * nothing.
 *
 * Spans made inside an operation nest under the exchange's span only with a
 * context manager that follows `await`: register
 * `AsyncLocalStorageContextManager` (`@opentelemetry/context-async-hooks`;
 * the Node SDK does).
 *
 * Each call subscribes anew: call it once per process.
 *
 * @param options - Providers and propagator; the global ones by default.
 * @returns The running instrumentation, to `uninstrument()` it.
 * @throws {@link rrxc!InvalidArgumentError} for an unknown option, or a provider or propagator without the methods it needs.
 *
 * @example
 * ```ts
 * import { context, propagation } from '@opentelemetry/api';
 * import { Controller } from 'rrxc';
 * import { instrument } from 'rrxc/otel';
 *
 * instrument(); // after the OpenTelemetry SDK is started
 * const controller = new Controller<string, string>();
 * const result = await controller.synchronize({ timeout: 5_000 }, async (xc) => {
 *   const carrier: Record<string, string> = {};
 *   propagation.inject(context.active(), carrier); // the exchange's span is active here
 *   const { correlationId } = xc.registerRequest({ message: 'job', carrier });
 *   console.log('publish with', correlationId, carrier);
 * });
 * console.log(result.status);
 * ```
 */
export function instrument(options?: InstrumentOptions): Instrumentation {
  const { tracerProvider, meterProvider, propagator } = checkOptionsObject(options, 'instrument options', INSTRUMENT_KEYS) as InstrumentOptions;
  const tracers = checkMethods('tracerProvider', tracerProvider, ['getTracer']) ?? trace.getTracerProvider();
  const meters = checkMethods('meterProvider', meterProvider, ['getMeter']) ?? metrics.getMeterProvider();
  const extractor = checkMethods('propagator', propagator, ['extract']) ?? propagation;
  return new RunningInstrumentation(tracers, meters, extractor);
}

/** The instrumentation scope: the library whose telemetry this is. */
const SCOPE = 'rrxc';

class RunningInstrumentation implements Instrumentation {
  #subscriptions: Subscriptions | undefined = new Subscriptions();
  readonly #spans: ExchangeSpans;
  readonly #metrics: ExchangeMetrics;

  constructor(tracers: TracerProvider, meters: MeterProvider, propagator: Pick<TextMapPropagator, 'extract'>) {
    const version = packageVersion();
    const subscriptions = this.#subscriptions!;
    this.#spans = new ExchangeSpans(version === undefined ? tracers.getTracer(SCOPE) : tracers.getTracer(SCOPE, version), propagator, subscriptions);
    this.#metrics = new ExchangeMetrics(version === undefined ? meters.getMeter(SCOPE) : meters.getMeter(SCOPE, version), subscriptions);
  }

  spanOf(exchange: Exchange<any, any>): Span | undefined {
    if (typeof exchange !== 'object' || exchange === null) {
      throw new InvalidArgumentError(`spanOf needs an exchange, got ${describe(exchange)}`);
    }
    return this.#spans.spanOf(exchange);
  }

  uninstrument(): void {
    const subscriptions = this.#subscriptions;
    if (subscriptions === undefined) return;
    this.#subscriptions = undefined;
    subscriptions.dispose();
    this.#spans.endOpen();
    this.#metrics.forgetOpen();
  }

  [Symbol.dispose](): void {
    this.uninstrument();
  }
}

let scopeVersion: string | undefined | null = null;

/** The package's version, for the instrumentation scope; none where package.json is not beside the code (a bundle). */
function packageVersion(): string | undefined {
  if (scopeVersion !== null) return scopeVersion;
  scopeVersion = undefined;
  try {
    const { name, version: found } = createRequire(import.meta.url)('../../package.json') as { name?: unknown; version?: unknown };
    if (name === 'rrxc' && typeof found === 'string') scopeVersion = found;
  } catch {
    // Bundled, or package.json left out: the scope goes without a version.
  }
  return scopeVersion;
}
