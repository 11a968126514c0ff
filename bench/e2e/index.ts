// npm run bench:e2e [-- --quick] [-- --only=rabbitmq,redis,nats] [-- --variants=rrxc,hand]
//                   [-- --rounds=10 --seconds=2 --warmup=0.25 --concurrency=1,16,128] [-- --json]
// node --cpu-prof --cpu-prof-dir=bench/results --import tsx bench/e2e/index.ts --only=nats --variants=rrxc --concurrency=128
//                   (profiles the client side of one variant)
//
// The end-to-end suite: every variant on every broker, side by side in one
// run — N callers in a closed loop against an echo worker in another
// process — with rounds interleaved (the order of variants, and of
// concurrencies, rotated every round) and medians taken per cell. Prints
// the table and the targets; a full run also writes bench/results/e2e.json,
// docs/benchmarks-e2e.svg and the generated part of the "End to end"
// section of docs/benchmarks.md (`--json` writes a quick run's results to
// bench/results/e2e-quick.json, never over the full ones).
//
// Exits 0 whatever the targets say (they are reported, not gating), 1 when
// a variant crashed or the run could not start. It ends by itself: every
// connection is closed, every worker stopped, nothing is left on a broker.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { machine, rotate } from '../harness.js';
import { e2eChartSvg } from './chart.js';
import { parseArgs, type Broker } from './config.js';
import { measure, type Sample } from './measure.js';
import { markdownReport } from './report.js';
import { cellResult, type E2eResults } from './results.js';
import { evaluateTargets } from './targets.js';
import { echoEnvFor, setupBroker } from './variants/index.js';
import type { BrokerSetup, Variant } from './variant.js';
import { startEcho, type EchoWorker } from './workers.js';

const argv = process.argv.slice(2);
const config = parseArgs(argv);
const root = fileURLToPath(new URL('../..', import.meta.url));
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));
// A full run, as documented: publishes. A partial one (--only, --concurrency) only prints.
const publishes = !config.quick && !argv.some((a) => /^--(only|concurrency|variants)=/.test(a));

const loadStart = os.loadavg();
const startedAt = performance.now();
const workers: EchoWorker[] = [];
const setups: BrokerSetup[] = [];
const crashed: { broker: Broker; variant: string; error: string }[] = [];
const samples = new Map<Variant, Map<number, Sample[]>>();
let failedToStart: unknown;

try {
  log(`rrxc end to end: ${config.brokers.join(', ')}; ${config.rounds} round(s) × ${config.seconds} s per cell; run ${config.runId}`);
  for (const broker of config.brokers) {
    workers.push(await startEcho(broker, await echoEnvFor(broker, config.runId, Math.max(...config.concurrencies))));
    const setup = await withinSeconds(60, `connecting to ${broker}`, setupBroker(broker, config.runId));
    setups.push(setup);
    log(`  ${setup.server}: ${setup.variants.map((v) => v.name).join(', ')}`);
    for (const s of setup.skipped) log(`  skipped ${s.name}: ${s.reason}`);
  }
  const all = setups.flatMap((s) => s.variants);
  // A part that is a variant's whole name picks that one alone ('rrxc consumeReplies' is also part of ', ack each').
  const picks = (part: string, name: string): boolean => (all.some((v) => v.name === part) ? name === part : name.includes(part));
  const variants = all.filter((v) => config.variants?.some((part) => picks(part, v.name)) ?? true);
  for (const variant of variants) samples.set(variant, new Map(config.concurrencies.map((c) => [c, []])));

  for (let round = 0; round < config.rounds; round++) {
    const roundStarted = performance.now();
    for (const variant of rotate(variants, round)) {
      if (crashed.some((c) => c.variant === variant.name)) continue;
      for (const concurrency of rotate(config.concurrencies, round)) {
        try {
          samples.get(variant)!.get(concurrency)!.push(await measure(variant, concurrency, config.seconds, config.warmupSeconds));
        } catch (error) {
          // One broken variant must not take the others' figures with it: it leaves the run, the run fails at the end.
          crashed.push({ broker: variant.broker, variant: variant.name, error: errorText(error) });
          log(`  ${variant.name} crashed at ${concurrency} in flight: ${errorText(error)}`);
          break;
        }
      }
    }
    log(`round ${round + 1}/${config.rounds}: ${((performance.now() - roundStarted) / 1000).toFixed(1)} s, load ${os.loadavg()[0]!.toFixed(2)}`);
  }
} catch (error) {
  failedToStart = error;
  log(`the run could not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  for (const variant of setups.flatMap((s) => s.variants)) {
    await variant.close().catch((error: unknown) => crashed.push({ broker: variant.broker, variant: variant.name, error: `close: ${errorText(error)}` }));
  }
  for (const setup of setups) await setup.cleanup().catch((error: unknown) => log(`cleaning up ${setup.broker} failed: ${errorText(error)}`));
  for (const worker of workers) await worker.stop();
}

if (failedToStart === undefined) {
  const variants = setups.flatMap((s) => s.variants).filter((v) => samples.has(v));
  const partial = {
    config: { rounds: config.rounds, seconds: config.seconds, warmupSeconds: config.warmupSeconds, concurrencies: config.concurrencies },
    variants: variants.map(({ broker, name, role, wiring }) => ({ broker, name, role, wiring })),
    cells: variants.flatMap((v) => config.concurrencies.map((c) => cellResult(v.broker, v.name, c, samples.get(v)!.get(c)!))),
  };
  const results: E2eResults = {
    version: 1,
    date: new Date().toISOString(),
    quick: config.quick,
    command: `npm run bench:e2e${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
    durationSeconds: (performance.now() - startedAt) / 1000,
    machine: machine(),
    loadavg: { start: loadStart, end: os.loadavg() },
    servers: Object.fromEntries(setups.map((s) => [s.broker, s.server])),
    skipped: setups.flatMap((s) => s.skipped),
    crashed,
    ...partial,
    targets: evaluateTargets(partial),
  };
  const report = markdownReport(results);
  process.stdout.write(`\n${report}\n\n`);
  for (const t of results.targets) log(`${t.pass ? 'PASS' : 'FAIL'}  ${t.description}`);
  if (publishes || argv.includes('--json')) {
    mkdirSync(`${root}bench/results`, { recursive: true });
    const file = `bench/results/${publishes ? 'e2e' : 'e2e-quick'}.json`;
    writeFileSync(`${root}${file}`, `${JSON.stringify(results, null, 1)}\n`);
    log(`wrote ${file}`);
  }
  if (publishes) publish(results, report);
}

// No process.exit() after a run: it must end by itself, which is the proof that nothing leaks.
process.exitCode = failedToStart !== undefined || crashed.length > 0 ? 1 : 0;
// A run that could not start may hold clients still retrying a broker that is not there; nothing is left to measure.
if (failedToStart !== undefined) process.exit(1);
// Should anything still hold the event loop a while later, say what: that is a leak to fix.
setTimeout(() => log(`still running 5 s after the run; open: ${process.getActiveResourcesInfo().join(', ')}`), 5_000).unref();

/** `promise`, or a rejection after `seconds` saying what did not finish. */
async function withinSeconds<T>(seconds: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer after ${seconds} s`)), seconds * 1000)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function publish(results: E2eResults, report: string): void {
  writeFileSync(`${root}docs/benchmarks-e2e.svg`, e2eChartSvg(results));
  const doc = `${root}docs/benchmarks.md`;
  const text = readFileSync(doc, 'utf8');
  const begin = '<!-- e2e:begin -->';
  const end = '<!-- e2e:end -->';
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) {
    log(`${doc} lacks the ${begin} … ${end} markers: the section was not updated`);
    return;
  }
  writeFileSync(doc, `${text.slice(0, a + begin.length)}\n${report}\n${text.slice(b)}`);
  log('wrote docs/benchmarks-e2e.svg and the End to end section of docs/benchmarks.md');
}
