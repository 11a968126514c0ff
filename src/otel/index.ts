/**
 * rrxc/otel — OpenTelemetry traces and metrics for rrxc, built on its
 * `diagnostics_channel` channels: {@link instrument} subscribes, and a span
 * per exchange (active for the operation of `synchronize()`), a span per
 * reply linked to its request, and the instruments `rrxc.responses`,
 * `rrxc.exchange.duration`, `rrxc.exchange.active` and `rrxc.rollback.tags`
 * follow. Needs `@opentelemetry/api`, an optional peer dependency of this
 * subpath only.
 *
 * @packageDocumentation
 * @module rrxc/otel
 */
export { instrument, type InstrumentOptions, type Instrumentation } from './instrument.js';
