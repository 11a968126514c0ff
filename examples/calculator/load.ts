/**
 * Load test of a running calculator: `node --import tsx examples/calculator/load.ts`
 * Flags: `--url` (default http://127.0.0.1:3000; loopback only), `--duration`
 * seconds (default 10, at most 60), `--connections` (default 50), `--delay`
 * ms the worker waits per job (default 0: measures the rrxc + queue path, not
 * the demo's random sleep).
 */
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:3000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    delay: { type: 'string', default: '0' },
  },
});

const base = new URL(values.url);
if (!['127.0.0.1', 'localhost', '[::1]'].includes(base.hostname)) {
  console.error(`refusing to load ${base.hostname}: this script only targets loopback`);
  process.exit(2);
}
const duration = Math.min(Number(values.duration), 60);
const connections = Number(values.connections);
if (!(duration > 0) || !Number.isSafeInteger(connections) || connections < 1) {
  console.error('--duration must be > 0 and --connections an integer ≥ 1');
  process.exit(2);
}

const url = new URL(`/calc?op=add&a=1&b=2&delay=${Number(values.delay)}`, base).href;
const result = await autocannon({ url, connections, duration, timeout: 10 });
const ok = result.requests.total - result.non2xx;
console.log(`${url}  ${connections} connections, ${duration} s`);
console.log(`requests/s  ${result.requests.average.toFixed(0)}  (total ${result.requests.total}, non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts})`);
console.log(`latency ms  p50 ${result.latency.p50}  p90 ${result.latency.p90}  p99 ${result.latency.p99}  max ${result.latency.max}`);
if (ok === 0) process.exitCode = 1;
