import type { Counter, Histogram, Meter, UpDownCounter } from '@opentelemetry/api';
import { CHANNELS, type ExchangeTraceContext, type ResponseMessage, type RollbackMessage } from '../events.js';
import { ATTR, DURATION_BUCKETS, METRIC } from './_names.js';
import { exchangeEvent, RESPONSE_CHANNELS, type Subscriptions } from './_subscriptions.js';

/**
 * The instruments of one instrumentation, fed from the channels. Durations
 * are in seconds, as the OpenTelemetry conventions ask of every duration
 * (`http.server.request.duration`, `messaging.process.duration`): one unit
 * across libraries lets a dashboard put them side by side; the buckets are
 * given as advice, since the SDK's default ones are made for milliseconds.
 */
export class ExchangeMetrics {
  readonly #active: UpDownCounter;
  /** The exchanges counted open: only their end may count them down. */
  readonly #open = new Set<ExchangeTraceContext>();

  constructor(meter: Meter, subscriptions: Subscriptions) {
    const responses: Counter = meter.createCounter(METRIC.responses, {
      unit: '{response}',
      description: 'Replies registered with registerResponse, by outcome.',
    });
    const duration: Histogram = meter.createHistogram(METRIC.exchangeDuration, {
      unit: 's',
      description: 'How long exchanges lasted, from creation to end, by status.',
      advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] },
    });
    const active = meter.createUpDownCounter(METRIC.exchangeActive, {
      unit: '{exchange}',
      description: 'Exchanges created and not ended yet.',
    });
    const rollbacks: Counter = meter.createCounter(METRIC.rollbackTags, {
      unit: '{tag}',
      description: 'Correlation IDs tagged for rollback, one tag each, because their exchange ended before their reply came; by the status it ended with.',
    });
    this.#active = active;
    const open = this.#open;

    subscriptions.on(exchangeEvent('start'), (trace: ExchangeTraceContext) => {
      open.add(trace);
      active.add(1);
    });
    subscriptions.on(exchangeEvent('asyncEnd'), (trace: ExchangeTraceContext) => {
      const { result } = trace;
      if (!open.delete(trace) || result === undefined) return;
      active.add(-1);
      duration.record(result.durationMs / 1_000, { [ATTR.exchangeStatus]: result.status });
    });
    for (const name of RESPONSE_CHANNELS) {
      subscriptions.on(name, ({ outcome }: ResponseMessage) => responses.add(1, { [ATTR.responseOutcome]: outcome }));
    }
    subscriptions.on(CHANNELS.rollbackTagged, ({ exchange, correlationIds }: RollbackMessage) => {
      const status = exchange.status;
      rollbacks.add(correlationIds.length, status === undefined ? {} : { [ATTR.exchangeStatus]: status });
    });
  }

  /** Counts down the exchanges still open: once unsubscribed, their ends would never reach the counter. */
  forgetOpen(): void {
    if (this.#open.size > 0) this.#active.add(-this.#open.size);
    this.#open.clear();
  }
}
