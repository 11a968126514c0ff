// Turns results into what people read: the terminal table, the target
// verdicts, and the Markdown of docs/benchmarks.md.
import type { MemoryResult } from './memory.js';
import type { ScenarioResult } from './scenarios.js';

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
}

export interface Target {
  readonly description: string;
  /** Measured, in the unit of `limit`. */
  readonly value: number;
  readonly limit: string;
  readonly pass: boolean;
}

export interface Results {
  readonly version: 1;
  readonly date: string;
  readonly quick: boolean;
  readonly command: string;
  readonly durationSeconds: number;
  readonly machine: Machine;
  readonly implementations: readonly { readonly name: string; readonly wiring: string }[];
  readonly scenarios: readonly ScenarioResult[];
  readonly memory: MemoryResult;
  readonly targets: readonly Target[];
}

const RRXC = 'rrxc';
const RRXC_PLAIN = 'rrxc (no timeout)';
const PEERS = ['naive', 'json-rpc-2.0', 'birpc'];

export function evaluateTargets(scenarios: readonly ScenarioResult[], memory: MemoryResult): Target[] {
  const targets: Target[] = [];
  const get = (id: string, impl: string): number | undefined => scenarios.find((s) => s.id === id)?.results[impl]?.median;

  const one = get('one', RRXC_PLAIN);
  const floor = get('one', 'floor');
  if (one !== undefined && floor !== undefined) {
    // Like for like: the floor has no deadline, so neither does this rrxc.
    targets.push({ description: 'rrxc ≥ 0.5 × floor, 1 request / exchange (both without deadline)', value: one / floor, limit: '≥ 0.5 ×', pass: one / floor >= 0.5 });
  }
  for (const scenario of scenarios) {
    const mine = scenario.results[RRXC]?.median;
    if (mine === undefined) continue;
    const peers = PEERS.filter((p) => scenario.results[p] !== undefined);
    if (peers.length === 0) continue;
    const worst = Math.min(...peers.map((p) => mine / scenario.results[p]!.median));
    const behind = peers.filter((p) => mine <= scenario.results[p]!.median);
    targets.push({
      description: `rrxc ahead of ${peers.join(', ')}: ${scenario.title}${behind.length > 0 ? ` (behind ${behind.join(', ')})` : ''}`,
      value: worst,
      limit: '> 1 × (worst ratio)',
      pass: worst > 1,
    });
  }
  const routes = scenarios.filter((s) => s.id.startsWith('routing-') && s.results[RRXC] !== undefined);
  const last = routes.at(-1);
  // Like for like: the largest run's own rounds with nothing else open, in
  // the same instance and the same way (its rounds are consecutive, the
  // smaller runs' interleaved, and the two methods differ by more than 1.3 ×).
  const alone = last?.results[RRXC]!.detail?.['aloneMedian'];
  if (last !== undefined && alone !== undefined) {
    const cost = alone / last.results[RRXC]!.median;
    targets.push({ description: `rrxc routing cost, ${last.title.replace('routing, ', '')} vs none, same instance`, value: cost, limit: '≤ 1.3 ×', pass: cost <= 1.3 });
  }
  for (const name of [RRXC_PLAIN, RRXC]) {
    const figures = memory.results[name];
    if (figures === undefined) continue;
    const label = name === RRXC ? 'with a timeout' : 'no timeout';
    targets.push({ description: `${name === RRXC ? 'rrxc' : 'rrxc'} heap per open one-request exchange, ${label}`, value: figures.bytesPerExchange, limit: '≤ 512 B', pass: figures.bytesPerExchange <= 512 });
    targets.push({ description: `rrxc heap back to baseline after ${memory.open.toLocaleString('en-US')} ended, ${label}`, value: figures.afterChange * 100, limit: '≤ 5 %', pass: figures.afterChange <= 0.05 });
  }
  return targets;
}

/** 1.23M, 456k, 789: three significant digits. */
export function si(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toPrecision(3)}M`;
  if (abs >= 1e3) return `${(value / 1e3).toPrecision(3)}k`;
  return value.toPrecision(3);
}

function formatTarget(t: Target): string {
  const value = t.limit.endsWith('%') ? `${t.value >= 0 ? '+' : ''}${t.value.toFixed(1)} %` : t.limit.endsWith('B') ? `${Math.round(t.value)} B` : `${t.value.toFixed(2)} ×`;
  return `${value} (target ${t.limit})`;
}

interface Grid {
  readonly header: string[];
  readonly rows: string[][];
}

function scenarioGrid(results: Results): Grid {
  const names = results.implementations.map((i) => i.name);
  const header = ['scenario', 'unit', ...names, 'rrxc / floor', 'rrxc / best peer'];
  const rows = results.scenarios.map((s) => {
    const cells = names.map((n) => (s.results[n] === undefined ? '–' : si(s.results[n]!.median)));
    const mine = s.results[RRXC]?.median;
    const floor = s.results['floor']?.median;
    const best = Math.max(...PEERS.map((p) => s.results[p]?.median ?? -Infinity));
    return [
      s.title,
      s.unit,
      ...cells,
      mine !== undefined && floor !== undefined ? `${(mine / floor).toFixed(2)}` : '–',
      mine !== undefined && Number.isFinite(best) ? `${(mine / best).toFixed(2)}` : '–',
    ];
  });
  const m = results.memory;
  rows.push([`heap / open exchange (${si(m.open)} open)`, 'bytes', ...names.map((n) => (m.results[n] === undefined ? '–' : String(Math.round(m.results[n]!.bytesPerExchange)))), '', '']);
  rows.push([
    'heap after all ended, vs before',
    '%',
    ...names.map((n) => {
      const f = m.results[n];
      return f === undefined ? '–' : `${f.afterChange >= 0 ? '+' : ''}${(f.afterChange * 100).toFixed(1)}`;
    }),
    '',
    '',
  ]);
  return { header, rows };
}

export function textReport(results: Results): string {
  const { header, rows } = scenarioGrid(results);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line), ''];
  out.push('medians of ' + (results.quick ? '1 round (--quick: a smoke run, not a measurement)' : 'the rounds') + '; ratios from the same run');
  out.push('');
  for (const t of results.targets) out.push(`${t.pass ? 'PASS' : 'FAIL'}  ${t.description}: ${formatTarget(t)}`);
  return out.join('\n');
}

export function markdownTable(results: Results): string {
  const { header, rows } = scenarioGrid(results);
  const out = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 2 ? '---' : '--:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
  out.push('', '| target | measured | |', '|---|--:|---|');
  for (const t of results.targets) out.push(`| ${t.description} | ${formatTarget(t)} | ${t.pass ? '**PASS**' : '**FAIL**'} |`);
  return out.join('\n');
}

/** The generated part of docs/benchmarks.md, between its markers. */
export function markdownResults(results: Results): string {
  const m = results.machine;
  return [
    `Latest full run: ${results.date.slice(0, 10)}, ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node} (V8 ${m.v8}), ${m.platform}; ${results.durationSeconds.toFixed(0)} s.`,
    '',
    markdownTable(results),
    '',
    'How each scenario was run:',
    '',
    ...results.scenarios.map((s) => `- **${s.title}** (${s.unit}): ${s.method}.`),
    `- **memory**: ${results.memory.method}.`,
    '',
    'How each implementation is wired:',
    '',
    ...results.implementations.map((i) => `- **${i.name}**: ${i.wiring}.`),
  ].join('\n');
}
