// One cell of the grid: one variant at one concurrency for one round. A
// closed loop — each of `concurrency` callers sends a request, awaits its
// reply, and sends the next — timed after an untimed warm-up, with the
// client process's CPU time over the same window.
import { TEXT, type Echo } from './config.js';
import type { Variant } from './variant.js';

export interface Sample {
  readonly requests: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Latency of one call (request sent → reply in the caller's hands), ms. */
  readonly p50: number;
  readonly p99: number;
  /**
   * User + system CPU time of this process per request, µs: every thread
   * (GC helpers, libuv), the client side only — the echo worker and the
   * broker run in other processes.
   */
  readonly cpuPerRequest: number;
}

let nextSeq = 0;

/** Runs `concurrency` callers until `deadline` (performance.now() ms); pushes each call's latency when `latencies` is given. */
async function closedLoop(variant: Variant, concurrency: number, deadline: number, latencies?: number[]): Promise<number> {
  let done = 0;
  const caller = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const seq = nextSeq++;
      const started = performance.now();
      const reply = await variant.call({ seq, text: TEXT } satisfies Echo);
      if (latencies !== undefined) latencies.push(performance.now() - started);
      if (reply.seq !== seq) throw new Error(`${variant.name}: request ${seq} got the reply of ${reply.seq}`);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  return done;
}

export async function measure(variant: Variant, concurrency: number, seconds: number, warmupSeconds: number): Promise<Sample> {
  await closedLoop(variant, concurrency, performance.now() + warmupSeconds * 1000);
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();
  // Calls in flight at the deadline finish and count, in time and CPU alike.
  const requests = await closedLoop(variant, concurrency, started + seconds * 1000, latencies);
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    requests,
    seconds: elapsed,
    perSecond: requests / elapsed,
    p50: at(0.5),
    p99: at(0.99),
    cpuPerRequest: (used.user + used.system) / requests,
  };
}
