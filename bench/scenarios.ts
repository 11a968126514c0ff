// The throughput scenarios. Each runs every implementation through the same
// driver, interleaved round by round, and reports the median of the rounds.
import { median, minorGc, now, rotate, secondsSince, turn } from './harness.js';
import type { Implementation, Instance, InstanceOptions } from './implementations/types.js';
import { DEFAULT_DEADLINE } from './implementations/types.js';
import { ANSWERED, DROPPED, type Payload } from './remote.js';

export interface Measurement {
  /** Median over the rounds. */
  readonly median: number;
  readonly rounds: readonly number[];
  /** Scenario-specific figures (timed-out share, heap bytes…). */
  readonly detail?: Readonly<Record<string, number>>;
}

export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  /** What `median` counts. */
  readonly unit: string;
  /** How it was run, for the docs. */
  readonly method: string;
  readonly results: Readonly<Record<string, Measurement>>;
}

export interface Config {
  readonly quick: boolean;
  readonly rounds: number;
  readonly one: { readonly total: number; readonly concurrency: number };
  readonly scatter: { readonly total: number; readonly concurrency: number; readonly requests: number };
  readonly timeoutMix: { readonly total: number; readonly concurrency: number; readonly timeout: number };
  /** Background exchanges for the interleaved routing runs; the largest count runs in memory.ts. */
  readonly routing: { readonly open: readonly number[]; readonly batch: number };
  readonly memory: { readonly open: number; readonly warmup: number };
}

export const FULL: Config = {
  quick: false,
  rounds: 5,
  one: { total: 200_000, concurrency: 1_000 },
  scatter: { total: 8_000, concurrency: 100, requests: 10 },
  timeoutMix: { total: 30_000, concurrency: 2_000, timeout: 50 },
  routing: { open: [1, 10_000, 200_000], batch: 20_000 },
  // Warm-up above rrxc's default maxDuplicates (100 000): its duplicate window is full at the baseline.
  memory: { open: 1_000_000, warmup: 120_000 },
};

export const QUICK: Config = {
  quick: true,
  rounds: 1,
  one: { total: 5_000, concurrency: 500 },
  scatter: { total: 1_000, concurrency: 50, requests: 10 },
  timeoutMix: { total: 3_000, concurrency: 500, timeout: 50 },
  routing: { open: [1, 10_000], batch: 2_000 },
  memory: { open: 20_000, warmup: 5_000 },
};

/** Long enough never to fire while a scenario holds exchanges open on purpose. */
export const LONG_DEADLINE = 600_000;

interface LoopOutcome {
  /** Exchanges completed per second (wall) in the steady state. */
  readonly perSecond: number;
  /** Exchanges completed per CPU-second (all threads: GC helpers count) in the steady state. */
  readonly perCpuSecond: number;
  /** Exchanges that rejected (timed out, for the implementations that reject). */
  readonly rejected: number;
}

/**
 * A closed loop: `concurrency` exchanges in flight, each completion starts
 * the next, until `total` have started. Timed from the end of the initial
 * fill to the last start, so neither the ramp-up nor the tail (the last
 * exchanges waiting on their deadline) counts: exactly `total - concurrency`
 * exchanges complete in that window.
 */
export function closedLoop(instance: Instance, total: number, concurrency: number, requests: number, dropEvery: number): Promise<LoopOutcome> {
  return new Promise((resolve, reject) => {
    let started = 0;
    let finished = 0;
    let rejected = 0;
    let t0 = 0n;
    let cpu0: NodeJS.CpuUsage | undefined;
    let wall = 0;
    let cpu = 0;
    const start = (): void => {
      const payload: Payload = dropEvery !== 0 && started % dropEvery === 0 ? DROPPED : ANSWERED;
      started++;
      instance.exchange(requests, payload).then(onDone, onFail);
      if (started === total) {
        wall = secondsSince(t0);
        const used = process.cpuUsage(cpu0);
        cpu = (used.user + used.system) / 1e6;
      }
    };
    const onDone = (): void => {
      finished++;
      if (started < total) start();
      else if (finished === total) {
        const steady = total - concurrency;
        resolve({ perSecond: steady / wall, perCpuSecond: steady / cpu, rejected });
      }
    };
    const onFail = (): void => {
      rejected++;
      onDone();
    };
    try {
      const fill = Math.min(concurrency, total - 1);
      for (let i = 0; i < fill; i++) start();
      t0 = now();
      cpu0 = process.cpuUsage();
    } catch (error) {
      reject(error);
    }
  });
}

/**
 * Runs `measure` for every implementation, one untimed warm-up each, then
 * `rounds` rounds in a rotating order. Each instance lives through all its
 * rounds: a long-running service is in its steady state (full duplicate
 * window, warm maps), not freshly constructed.
 *
 * Between rounds the nursery is emptied (`collect`), not the whole heap: a
 * forced full collection while nothing is in flight frees the hidden
 * classes of every transient object (results, records, promises) and V8
 * then deoptimizes all code compiled against them (`--trace-deopt`:
 * "reason: weak objects", ~17 functions per round for rrxc). Every round
 * would measure re-optimization — halving rrxc's figure, sparing the floor,
 * whose code is a few lines — and a service under load never reaches a
 * major collection with none of its hot objects alive.
 */
export async function interleaved(
  implementations: readonly Implementation[],
  options: InstanceOptions,
  rounds: number,
  measure: (instance: Instance, implementation: Implementation) => Promise<{ value: number; detail?: Record<string, number> }>,
  teardown?: (instance: Instance) => Promise<void>,
  collect: () => void = minorGc,
): Promise<Record<string, Measurement>> {
  const instances = new Map(implementations.map((impl) => [impl, impl.create(options)]));
  const values = new Map<Implementation, number[]>(implementations.map((impl) => [impl, []]));
  const details = new Map<Implementation, Record<string, number>>();
  for (const [impl, instance] of instances) await measure(instance, impl);
  for (let round = 0; round < rounds; round++) {
    for (const impl of rotate(implementations, round)) {
      collect();
      const { value, detail } = await measure(instances.get(impl)!, impl);
      values.get(impl)!.push(value);
      if (detail !== undefined) details.set(impl, detail);
    }
  }
  for (const instance of instances.values()) {
    await teardown?.(instance);
    await instance.close();
  }
  const results: Record<string, Measurement> = {};
  for (const [impl, rounds_] of values) {
    const detail = details.get(impl);
    results[impl.name] = { median: median(rounds_), rounds: rounds_, ...(detail === undefined ? {} : { detail }) };
  }
  return results;
}

export async function oneRequest(implementations: readonly Implementation[], config: Config): Promise<ScenarioResult> {
  const { total, concurrency } = config.one;
  const results = await interleaved(implementations, { timeout: DEFAULT_DEADLINE, autoReply: true }, config.rounds, async (instance) => {
    const { perSecond } = await closedLoop(instance, total, concurrency, 1, 0);
    return { value: perSecond };
  });
  return {
    id: 'one',
    title: '1 request / exchange',
    unit: 'exchanges/s',
    method: `closed loop, ${concurrency} exchanges in flight, ${total} per round; every reply answered on the next event-loop turn; ${DEFAULT_DEADLINE / 1000} s deadline`,
    results,
  };
}

export async function scatterGather(implementations: readonly Implementation[], config: Config): Promise<ScenarioResult> {
  const { total, concurrency, requests } = config.scatter;
  const results = await interleaved(implementations, { timeout: DEFAULT_DEADLINE, autoReply: true }, config.rounds, async (instance) => {
    const { perSecond } = await closedLoop(instance, total, concurrency, requests, 0);
    return { value: perSecond };
  });
  return {
    id: 'scatter',
    title: `${requests} requests / exchange`,
    unit: 'exchanges/s',
    method: `closed loop, ${concurrency} exchanges (${concurrency * requests} requests) in flight, ${total} exchanges per round; the others wait for all ${requests} with Promise.all`,
    results,
  };
}

export async function timeoutMix(implementations: readonly Implementation[], config: Config): Promise<ScenarioResult> {
  const { total, concurrency, timeout } = config.timeoutMix;
  const results = await interleaved(
    implementations.filter((impl) => impl.timeouts),
    { timeout, autoReply: true },
    config.rounds,
    async (instance) => {
      const before = instance.rolledBack;
      const { perCpuSecond, rejected } = await closedLoop(instance, total, concurrency, 1, 2);
      // rrxc's timed-out exchanges resolve and are counted by its onRollback hook;
      // the others reject. Let the hook's microtasks run before counting.
      await turn();
      const timedOut = rejected + instance.rolledBack - before;
      return { value: perCpuSecond, detail: { timedOutShare: timedOut / total } };
    },
  );
  for (const [name, m] of Object.entries(results)) {
    const share = m.detail?.['timedOutShare'] ?? 0;
    // The mix is only what it says when half timed out: a loop turn slower
    // than the deadline (a busy shared machine) lets answered exchanges
    // expire first. Said loudly, and kept in the JSON, rather than hidden.
    if (Math.abs(share - 0.5) > 0.03) process.emitWarning(`timeout mix: ${name} timed out ${(share * 100).toFixed(1)} % of exchanges in its last round, not 50 %`);
  }
  return {
    id: 'timeouts',
    title: 'timeout mix (½ time out)',
    unit: 'exchanges/CPU-s',
    method: `closed loop, ${concurrency} in flight, ${total} per round; every second exchange is never answered and hits its real ${timeout} ms timer (rrxc tags it for rollback and runs onRollback; naive records it and rejects; json-rpc-2.0 and birpc reject). Counted per CPU-second (all threads), so the idle wait for deadlines does not count`,
    results,
  };
}

/**
 * Opens `count` one-request exchanges that stay open (their requests are
 * taken off the transport unanswered, keeping only their keys), in chunks:
 * birpc posts after a few microtasks, and a chunk at a time keeps the
 * transport's queue small.
 */
export async function openBackground(instance: Instance, count: number, promises: unknown[], keys: (string | number)[]): Promise<void> {
  const CHUNK = 10_000;
  let stored = 0;
  const keep = (message: unknown): void => {
    keys[stored++] = instance.keyOf(message);
  };
  for (let i = 0; i < count; ) {
    const end = Math.min(count, i + CHUNK);
    for (; i < end; i++) promises[i] = instance.exchange(1, ANSWERED);
    await turn();
    instance.remote.drain(keep);
  }
  if (stored !== count) throw new Error(`opened ${count} exchanges but ${stored} requests were sent`);
}

/**
 * Answers every background exchange and waits until all have settled.
 * @returns How many settled.
 */
export async function endBackground(instance: Instance, promises: unknown[], keys: (string | number)[], count: number): Promise<void> {
  let settled = 0;
  const onSettled = (): void => {
    settled++;
  };
  for (let i = 0; i < count; i++) (promises[i] as Promise<unknown>).then(onSettled, onSettled);
  for (let i = 0; i < count; i++) {
    instance.reply(keys[i]!);
    if (i % 10_000 === 9_999) await turn();
  }
  for (let attempt = 0; attempt < 100 && settled < count; attempt++) await turn();
  if (settled !== count) throw new Error(`${count - settled} of ${count} background exchanges did not end`);
}

/**
 * One routing round: `batch` one-request exchanges are opened and their
 * requests sent (untimed), then all their replies are routed and the waiting
 * callers resumed (timed): the cost of a reply reaching its exchange.
 * @param beforeTiming - Awaited just before the timed part (a profiler starting).
 */
export async function routeRound(instance: Instance, batch: number, beforeTiming?: () => Promise<unknown>): Promise<number> {
  let done = 0;
  let release!: () => void;
  const all = new Promise<void>((resolve) => (release = resolve));
  const onDone = (): void => {
    if (++done === batch) release();
  };
  for (let i = 0; i < batch; i++) instance.exchange(1, ANSWERED).then(onDone, onDone);
  await turn();
  if (instance.remote.queued !== batch) throw new Error(`routing: ${instance.remote.queued} requests queued, expected ${batch}`);
  minorGc();
  await beforeTiming?.();
  const t0 = now();
  instance.remote.flush();
  await all;
  return batch / secondsSince(t0);
}

/** Routing with `open` other exchanges open, every implementation interleaved. */
export async function routing(implementations: readonly Implementation[], config: Config, open: number): Promise<ScenarioResult> {
  const { batch } = config.routing;
  const backgrounds = new Map<Instance, { promises: unknown[]; keys: (string | number)[] }>();
  const background = async (instance: Instance): Promise<{ promises: unknown[]; keys: (string | number)[] }> => {
    let held = backgrounds.get(instance);
    if (held === undefined) {
      held = { promises: new Array<unknown>(open), keys: new Array<string | number>(open) };
      backgrounds.set(instance, held);
      await openBackground(instance, open, held.promises, held.keys);
    }
    return held;
  };
  const results = await interleaved(
    implementations,
    { timeout: LONG_DEADLINE, autoReply: false },
    config.rounds,
    async (instance) => {
      await background(instance);
      return { value: await routeRound(instance, batch) };
    },
    async (instance) => {
      const { promises, keys } = await background(instance);
      await endBackground(instance, promises, keys, open);
    },
    // routeRound empties the nursery itself, right before its timed part.
    () => {},
  );
  return routingResult(open, batch, results, 'interleaved');
}

export function routingResult(open: number, batch: number, results: Record<string, Measurement>, how: string): ScenarioResult {
  return {
    id: `routing-${open}`,
    title: `routing, ${open.toLocaleString('en-US')} open`,
    unit: 'replies/s',
    method: `${open} one-request exchanges held open; per round ${batch} more are opened (untimed), then their replies are routed and the callers resumed (timed); ${how}`,
    results,
  };
}
