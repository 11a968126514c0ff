// npm run bench [-- --quick] [-- --json] [-- --only=one,scatter,timeouts,routing,memory] [-- --impls=floor,rrxc]
// npm run bench -- --only=structures [-- --quick]   (bench/structures.ts: each engine trick against the plain thing)
//
// Runs every scenario for every implementation in this one process, prints
// the table and the targets. --json also writes bench/results/latest.json;
// a full (not --quick) --json run also regenerates docs/benchmarks.svg and
// the results section of docs/benchmarks.md. --quick (or BENCH_QUICK=1) is
// the CI smoke: seconds, exit 0 even when targets fail, but any exception
// still fails the process. --render=FILE redraws the chart and docs from a
// saved JSON without measuring.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chartSvg } from './chart.js';
import { machine, now, secondsSince } from './harness.js';
import { IMPLEMENTATIONS as ALL } from './implementations/index.js';
import { memoryAndRouting } from './memory.js';
import { evaluateTargets, markdownResults, textReport, type Results } from './report.js';
import { FULL, oneRequest, QUICK, routing, scatterGather, timeoutMix, type ScenarioResult } from './scenarios.js';

const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(`--${name}`);
const option = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const quick = flag('quick') || process.env['BENCH_QUICK'] === '1';
const json = flag('json');
const only = option('only')?.split(',');
const render = option('render');
const picked = option('impls')?.split(',');
const IMPLEMENTATIONS = picked === undefined ? ALL : ALL.filter((i) => picked.includes(i.name));
const root = fileURLToPath(new URL('..', import.meta.url));
// A quick run never overwrites the committed full results.
const resultsFile = `${root}bench/results/${quick ? 'quick' : 'latest'}.json`;
const config = quick ? QUICK : FULL;
const log = (line: string): void => void process.stderr.write(`${line}\n`);

function publish(results: Results): void {
  writeFileSync(`${root}docs/benchmarks.svg`, chartSvg(results));
  const doc = `${root}docs/benchmarks.md`;
  const text = readFileSync(doc, 'utf8');
  const begin = '<!-- results:begin -->';
  const end = '<!-- results:end -->';
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`${doc} lacks the ${begin} … ${end} markers`);
  writeFileSync(doc, `${text.slice(0, a + begin.length)}\n${markdownResults(results)}\n${text.slice(b)}`);
  log(`wrote docs/benchmarks.svg and docs/benchmarks.md`);
}

async function measure(): Promise<Results> {
  const started = now();
  const wanted = (id: string): boolean => only === undefined || only.includes(id);
  const scenarios: ScenarioResult[] = [];
  const step = async <T>(title: string, run: () => Promise<T>): Promise<T> => {
    log(`${title}…`);
    const t = now();
    const result = await run();
    log(`  ${secondsSince(t).toFixed(1)} s`);
    return result;
  };
  if (wanted('one')) scenarios.push(await step('1 request per exchange', () => oneRequest(IMPLEMENTATIONS, config)));
  if (wanted('scatter')) scenarios.push(await step('10 requests per exchange', () => scatterGather(IMPLEMENTATIONS, config)));
  if (wanted('timeouts')) scenarios.push(await step('timeout mix', () => timeoutMix(IMPLEMENTATIONS, config)));
  if (wanted('routing')) {
    for (const open of config.routing.open) scenarios.push(await step(`routing, ${open} open`, () => routing(IMPLEMENTATIONS, config, open)));
  }
  let memory: Results['memory'] = { open: 0, method: 'not run', results: {} };
  if (wanted('memory')) {
    const both = await step(`memory and routing, ${config.memory.open} open`, () => memoryAndRouting(IMPLEMENTATIONS, config, log));
    memory = both.memory;
    scenarios.push(both.routing);
  }
  return {
    version: 1,
    date: new Date().toISOString(),
    quick,
    command: `npm run bench -- ${args.join(' ')}`.trim(),
    durationSeconds: secondsSince(started),
    machine: machine(),
    implementations: IMPLEMENTATIONS.map(({ name, wiring }) => ({ name, wiring })),
    scenarios,
    memory,
    targets: evaluateTargets(scenarios, memory),
  };
}

if (render !== undefined) {
  publish(JSON.parse(readFileSync(render, 'utf8')) as Results);
} else {
  if (only?.includes('structures')) {
    // Not part of a default run: it measures the core's containers, not the library against its peers.
    const { runStructures, structuresReport, writeStructuresResults } = await import('./structures.js');
    const structures = await runStructures({ quick, command: `npm run bench -- ${args.join(' ')}`.trim(), log });
    process.stdout.write(`\n${structuresReport(structures)}\n`);
    log(`wrote ${writeStructuresResults(structures)}`);
    if (only.length === 1) process.exit(0);
  }
  // birpc unrefs its timers: with only those pending (the timeout mix's
  // dropped calls), Node would exit mid-scenario with the await unsettled.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  const results = await measure();
  clearInterval(keepAlive);
  process.stdout.write(`\n${textReport(results)}\n`);
  if (json) {
    mkdirSync(`${root}bench/results`, { recursive: true });
    writeFileSync(resultsFile, `${JSON.stringify(results, null, 1)}\n`);
    log(`wrote ${resultsFile.slice(root.length)}`);
    if (!quick && only === undefined && picked === undefined) publish(results);
  }
  const failed = results.targets.filter((t) => !t.pass).length;
  if (failed > 0) log(`${failed} target(s) not met${quick ? ' (ignored in --quick)' : ''}`);
  // Exit explicitly: peers' pending timers (json-rpc-2.0's deadline wrapper
  // is not unref'd) must not keep the process alive after the report.
  process.exit(failed > 0 && !quick ? 1 : 0);
}
