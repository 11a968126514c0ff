// What people read of a run: the results table, the targets with PASS /
// FAIL, the load and the machine — the same Markdown in the terminal and
// in docs/benchmarks.md.
import { si, type Target } from '../report.js';
import { BROKERS } from './config.js';
import type { CellResult, E2eResults } from './results.js';

export const BROKER_TITLE = { rabbitmq: 'RabbitMQ', redis: 'Redis', nats: 'NATS' } as const;

/** `12.3k/s · 0.52 / 1.90 ms · 85 µs`: throughput, p50 / p99 latency, client CPU per request. */
function cell(result: CellResult | undefined): string {
  if (result === undefined || result.samples.length === 0) return '–';
  const { perSecond, p50, p99, cpuPerRequest } = result.median;
  return `${si(perSecond)}/s · ${ms(p50)} / ${ms(p99)} ms · ${Math.round(cpuPerRequest)} µs`;
}

function ms(value: number): string {
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}

function formatTarget(t: Target): string {
  return t.limit.endsWith('ms') ? `${t.value.toFixed(2)} ms` : `${t.value.toFixed(2)} ×`;
}

const loads = (values: readonly number[]): string => values.map((v) => v.toFixed(2)).join(' / ');

export function resultsTable(results: E2eResults): string {
  const cs = results.config.concurrencies;
  const lines = [`| broker | variant | ${cs.map((c) => `${c} in flight`).join(' | ')} |`, `|---|---|${cs.map(() => '---|').join('')}`];
  for (const broker of BROKERS) {
    for (const variant of results.variants.filter((v) => v.broker === broker)) {
      const name = variant.name.startsWith('rrxc') ? `**${variant.name}**` : variant.name;
      const cells = cs.map((c) => cell(results.cells.find((x) => x.variant === variant.name && x.concurrency === c)));
      lines.push(`| ${BROKER_TITLE[broker]} | ${name} | ${cells.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

export function targetsTable(targets: readonly Target[]): string {
  const lines = ['| target | measured | |', '|---|--:|---|'];
  for (const t of targets) lines.push(`| ${t.description} | ${formatTarget(t)} (target ${t.limit}) | **${t.pass ? 'PASS' : 'FAIL'}** |`);
  return lines.join('\n');
}

/** The generated part of the "End to end" section of docs/benchmarks.md, and what the terminal prints. */
export function markdownReport(results: E2eResults): string {
  const m = results.machine;
  const servers = BROKERS.map((b) => results.servers[b]).filter((s) => s !== undefined);
  const passed = results.targets.filter((t) => t.pass).length;
  const parts = [
    `${results.quick ? 'Quick smoke run' : 'Run'}: ${results.date.slice(0, 10)}, ${m.cpus} × ${m.cpuModel} (shared), ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}; ${servers.join(', ')} on loopback. ` +
      `${results.config.rounds} round(s) of ${results.config.seconds} s per cell (after ${results.config.warmupSeconds} s untimed), medians; ${Math.round(results.durationSeconds)} s in all. ` +
      `Load average (1 / 5 / 15 min): ${loads(results.loadavg.start)} at the start, ${loads(results.loadavg.end)} at the end.`,
    '',
    'Each cell: requests/s · p50 / p99 latency · client CPU per request (user + system µs of the client process; the echo worker and the broker are other processes).',
    '',
    resultsTable(results),
    '',
    `Targets: ${passed} of ${results.targets.length} hold.`,
    '',
    targetsTable(results.targets),
  ];
  if (results.skipped.length > 0 || results.crashed.length > 0) {
    parts.push('');
    for (const s of results.skipped) parts.push(`- skipped: **${s.name}** (${BROKER_TITLE[s.broker]}): ${s.reason}.`);
    for (const c of results.crashed) parts.push(`- crashed: **${c.variant}** (${BROKER_TITLE[c.broker]}): ${c.error}`);
  }
  parts.push('', 'How each variant is wired:', '');
  for (const v of results.variants) parts.push(`- **${v.name}** (${BROKER_TITLE[v.broker]}): ${v.wiring}.`);
  return parts.join('\n');
}
