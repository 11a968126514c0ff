// rrxc/otel: OpenTelemetry traces and metrics from rrxc's channels.
export { instrument, type InstrumentOptions, type Instrumentation } from './instrument.js';
