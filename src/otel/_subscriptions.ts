// Every listener rrxc/otel puts on a channel goes through one Subscriptions,
// so that uninstrument() takes off exactly what instrument() put on.
import type { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, tracingChannel, unsubscribe, type TracingChannel } from 'node:diagnostics_channel';
import { diag } from '@opentelemetry/api';
import { CHANNELS, EXCHANGE_TRACING, type ExchangeTraceContext } from '../events.js';
import type { ResponseOutcome } from '../types.js';

/** A channel listener as `diagnostics_channel.subscribe` takes it. */
type Listener = (message: unknown, name: string | symbol) => void;

/** The exchange tracing channel, by name: the same channels the core publishes on, whichever copy of it is loaded. */
export const exchangeChannels: TracingChannel<unknown, ExchangeTraceContext> = tracingChannel(EXCHANGE_TRACING);

/** The subscriptions and bound stores of one instrumentation. */
export class Subscriptions {
  readonly #listeners: [name: string, listener: Listener][] = [];
  readonly #stores: AsyncLocalStorage<unknown>[] = [];

  /**
   * Subscribes `listener` to the channel `name`. A listener that throws
   * would, through diagnostics_channel, become an uncaught exception in the
   * application: it is logged on the OpenTelemetry `diag` logger instead.
   */
  on<M>(name: string, listener: (message: M) => void): void {
    const guarded: Listener = (message) => {
      try {
        listener(message as M);
      } catch (error) {
        diag.error(`rrxc/otel: the listener of ${name} failed`, error);
      }
    };
    subscribe(name, guarded);
    this.#listeners.push([name, guarded]);
  }

  /** Binds `store` to the exchange channel's `start`, with `transform` guarded as listeners are. */
  bindStart<T>(store: AsyncLocalStorage<T>, transform: (trace: ExchangeTraceContext) => T, fallback: () => T): void {
    exchangeChannels.start.bindStore(store, (trace) => {
      try {
        return transform(trace);
      } catch (error) {
        diag.error('rrxc/otel: starting the span of an exchange failed', error);
        return fallback();
      }
    });
    this.#stores.push(store as AsyncLocalStorage<unknown>);
  }

  /** Takes every subscription and store off its channel. */
  dispose(): void {
    for (const [name, listener] of this.#listeners.splice(0)) unsubscribe(name, listener);
    for (const store of this.#stores.splice(0)) exchangeChannels.start.unbindStore(store);
  }
}

/** `tracing:rrxc:exchange:<event>`, as Node's `tracingChannel()` names its channels. */
export const exchangeEvent = (event: 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error'): string => `tracing:${EXCHANGE_TRACING}:${event}`;

/** The channels of `registerResponse`'s outcomes, one per outcome: the record type fails to compile when an outcome is added without its channel. */
export const RESPONSE_CHANNELS = Object.values({
  delivered: CHANNELS.responseDelivered,
  duplicate: CHANNELS.responseDuplicate,
  overwritten: CHANNELS.responseOverwritten,
  'rolled-back': CHANNELS.responseRolledBack,
  committed: CHANNELS.responseCommitted,
  unmatched: CHANNELS.responseUnmatched,
} satisfies Record<ResponseOutcome, string>);
