/**
 * The calculator service: `npm start` (in-process queues, no server needed),
 * `AMQP_URL=amqp://guest:guest@127.0.0.1:5672 npm start` (RabbitMQ).
 * Several instances whose replies cross: `REDIS_URL=redis://127.0.0.1:6379
 * npm start -- --port 3001` and the same with `--port 3002` (jobs on a
 * shared Redis list, replies on a list per instance; with `AMQP_URL` too, on
 * RabbitMQ): every other answer, starting with the first, goes to the other
 * instance, whose backplane forwards it to the one waiting.
 * Flags: `--port <n>` (default 3000), `--timeout <ms>` (default 1000),
 * `--max-delay <ms>` (default 250: ordinary requests are answered in time;
 * `delay=<ms>` on a request makes that one late on purpose).
 */
import { parseArgs } from 'node:util';
import { DEFAULT_MAX_DELAY, DEFAULT_TIMEOUT, start } from './service.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '3000' },
    host: { type: 'string', default: '127.0.0.1' },
    timeout: { type: 'string', default: String(DEFAULT_TIMEOUT) },
    'max-delay': { type: 'string', default: String(DEFAULT_MAX_DELAY) },
  },
});

const port = integer('--port', values.port, 0, 65_535);
const timeout = integer('--timeout', values.timeout, 1, 2 ** 31 - 1);
const maxDelay = integer('--max-delay', values['max-delay'], 0, 60_000);
const amqpUrl = process.env['AMQP_URL'] || undefined;
const redisUrl = process.env['REDIS_URL'] || undefined;

const calculator = await start({
  port,
  host: values.host,
  timeout,
  maxDelay,
  ...(amqpUrl === undefined ? {} : { amqpUrl }),
  ...(redisUrl === undefined ? {} : { redisUrl }),
});
console.log(`calculator listening on ${calculator.url} (${calculator.mode}, timeout ${timeout} ms, worker delay 0–${maxDelay} ms)`);
if (calculator.instanceId !== undefined && calculator.others.length === 0) {
  console.log(
    `instance ${calculator.instanceId}: start another with another --port; then every other answer to this one's jobs goes to the other, which logs it and forwards it back through Redis`,
  );
}
console.log(`try:  curl '${calculator.url}/calc?op=add&a=1&b=2'`);
console.log(`      curl -X POST ${calculator.url}/calc -H 'content-type: application/json' -d '{"op":"div","a":1,"b":3}'`);
console.log(`      curl '${calculator.url}/calc?op=mul&a=6&b=7&delay=${timeout + 500}'   # too late: 504, then the late reply is rolled back`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`${signal}: shutting down`);
    calculator.close().then(
      () => console.log('closed'),
      (error: unknown) => {
        console.error(error);
        process.exitCode = 1;
      },
    );
  });
}

function integer(flag: string, value: string, min: number, max: number): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    console.error(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return number;
}
