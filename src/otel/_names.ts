// The names rrxc/otel puts on telemetry, in one place: docs/observability.md
// lists them, and the tests spell them out rather than read them from here.

/** Span names. */
export const SPAN = {
  exchange: 'rrxc exchange',
  response: 'rrxc response',
} as const;

/** Names of the events put on an exchange's span. */
export const EVENT = {
  request: 'rrxc.request',
  response: 'rrxc.response',
} as const;

/** Attribute names: the messaging conventions' where one fits, `rrxc.*` for the rest. */
export const ATTR = {
  conversationId: 'messaging.message.conversation_id',
  errorType: 'error.type',
  exchangeId: 'rrxc.exchange.id',
  exchangeStatus: 'rrxc.exchange.status',
  exchangeRequests: 'rrxc.exchange.requests',
  exchangeUnanswered: 'rrxc.exchange.unanswered',
  responseOutcome: 'rrxc.response.outcome',
} as const;

/** Instrument names. */
export const METRIC = {
  responses: 'rrxc.responses',
  exchangeDuration: 'rrxc.exchange.duration',
  exchangeActive: 'rrxc.exchange.active',
  rollbackTags: 'rrxc.rollback.tags',
} as const;

/**
 * Bucket boundaries of `rrxc.exchange.duration`, in seconds: the HTTP
 * conventions' from 5 ms to 10 s, then on past the 30 s default timeout to
 * five minutes, where exchanges bound to a long signal end.
 */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300];
