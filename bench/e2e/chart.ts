// docs/benchmarks-e2e.svg: requests/s per variant, one panel per broker and
// concurrency (rows: brokers; columns: concurrencies), drawn by the suite's
// shared panel code.
import { panelChartSvg, type Panel } from '../chart.js';
import { BROKERS } from './config.js';
import { BROKER_TITLE } from './report.js';
import type { E2eResults } from './results.js';
import type { Role } from './variant.js';

/** One colour per role, so that "the hand-rolled one" looks the same on every broker. */
const ROLE_COLORS: Readonly<Record<Role, string>> = {
  'hand-rolled': '#8d6e63',
  peer: '#5c6bc0',
  rrxc: '#e65100',
  'rrxc-ack-each': '#fb8c00',
  'rrxc-by-hand': '#ffa726',
  'rrxc-direct-reply-to': '#bf360c',
  'backplane-local': '#ef6c00',
  'backplane-forwarded': '#ffb74d',
};

export function e2eChartSvg(results: E2eResults): string {
  const panels: Panel[] = [];
  for (const broker of BROKERS) {
    const variants = results.variants.filter((v) => v.broker === broker);
    if (variants.length === 0) continue;
    for (const c of results.config.concurrencies) {
      panels.push({
        title: `${BROKER_TITLE[broker]}, ${c} in flight`,
        unit: 'req/s',
        bars: variants.flatMap((v) => {
          const cell = results.cells.find((x) => x.variant === v.name && x.concurrency === c && x.samples.length > 0);
          return cell === undefined ? [] : [{ name: v.name, value: cell.median.perSecond }];
        }),
        lowerIsBetter: false,
      });
    }
  }
  const m = results.machine;
  const load = (values: readonly number[]): string => values.map((v) => v.toFixed(2)).join('/');
  return panelChartSvg({
    title: 'rrxc end to end: requests/s, medians, higher is better',
    subtitle: `echo worker in another process; ${m.cpus} × ${m.cpuModel}, Node ${m.node}, ${results.date.slice(0, 10)}; load ${load(results.loadavg.start)} → ${load(results.loadavg.end)}${results.quick ? ' (quick smoke run)' : ''}`,
    panels,
    colors: Object.fromEntries(results.variants.map((v) => [v.name, ROLE_COLORS[v.role]])),
    barsPerPanel: Math.max(...BROKERS.map((b) => results.variants.filter((v) => v.broker === b).length)),
    width: 1400,
    columns: results.config.concurrencies.length,
    labelWidth: 190,
  });
}
