// The SVG charts of the suite, written by hand from the results JSON:
// panels of bars, each scaled to its own best (the rates of scenarios differ
// by orders of magnitude). chartSvg draws docs/benchmarks.svg (one panel per
// scenario and one for memory); bench/e2e draws its own with panelChartSvg.
import type { Results } from './report.js';
import { si } from './report.js';

const COLORS: Readonly<Record<string, string>> = {
  floor: '#9e9e9e',
  naive: '#8d6e63',
  'json-rpc-2.0': '#5c6bc0',
  birpc: '#26a69a',
  rrxc: '#e65100',
  'rrxc (no timeout)': '#ffa726',
};

/** One panel of bars: a scenario, a broker at one concurrency, memory. */
export interface Panel {
  readonly title: string;
  readonly unit: string;
  readonly bars: readonly { readonly name: string; readonly value: number }[];
  /** Bytes: shorter is better. */
  readonly lowerIsBetter: boolean;
}

/** What a chart of panels says above them, and how it lays them out. */
export interface PanelChart {
  readonly title: string;
  readonly subtitle: string;
  readonly panels: readonly Panel[];
  /** Bar colour per bar name; others are grey-blue. */
  readonly colors: Readonly<Record<string, string>>;
  /** Room a panel keeps for the most bars any panel has, so that rows line up. */
  readonly barsPerPanel: number;
  /** Width of the whole chart, in px. @defaultValue 1000 */
  readonly width?: number;
  /** Panels per row. @defaultValue 2 */
  readonly columns?: number;
  /** Width of the bar labels, in px. @defaultValue 130 */
  readonly labelWidth?: number;
  /** The figure printed after a bar (lowerIsBetter panels print bytes). @defaultValue {@link si} */
  readonly format?: (value: number) => string;
}

const BAR = 14;
const GAP = 4;
const TITLE = 34;

export function chartSvg(results: Results): string {
  const names = results.implementations.map((i) => i.name);
  const panels: Panel[] = results.scenarios.map((s) => ({
    title: s.title,
    unit: s.unit,
    bars: names.filter((n) => s.results[n] !== undefined).map((n) => ({ name: n, value: s.results[n]!.median })),
    lowerIsBetter: false,
  }));
  panels.push({
    title: `heap per open exchange, ${si(results.memory.open)} open`,
    unit: 'bytes',
    bars: names.filter((n) => results.memory.results[n] !== undefined).map((n) => ({ name: n, value: results.memory.results[n]!.bytesPerExchange })),
    lowerIsBetter: true,
  });
  const m = results.machine;
  return panelChartSvg({
    title: 'rrxc benchmarks: medians, higher is better (memory: lower)',
    subtitle: `${m.cpus} × ${m.cpuModel}, Node ${m.node}, ${results.date.slice(0, 10)}${results.quick ? ' (quick smoke run)' : ''}`,
    panels,
    colors: COLORS,
    barsPerPanel: names.length,
  });
}

/**
 * Panels of horizontal bars, each scaled to its own best (rates of
 * different scenarios or brokers differ by orders of magnitude): the
 * drawing of docs/benchmarks.svg, shared by every chart of the suite.
 */
export function panelChartSvg(chart: PanelChart): string {
  const width = chart.width ?? 1000;
  const columns = chart.columns ?? 2;
  const label = chart.labelWidth ?? 130;
  const format = chart.format ?? si;
  const panelWidth = width / columns;
  const panelHeight = TITLE + chart.barsPerPanel * (BAR + GAP) + 16;
  const rows = Math.ceil(chart.panels.length / columns);
  const header = 56;
  const height = header + rows * panelHeight + 8;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="17" font-weight="600" fill="#212121">${escape(chart.title)}</text>`,
    `<text x="16" y="43" fill="#616161">${escape(chart.subtitle)}</text>`,
  ];
  chart.panels.forEach((panel, index) => {
    const x = (index % columns) * panelWidth + 16;
    const y = header + Math.floor(index / columns) * panelHeight;
    parts.push(`<text x="${x}" y="${y + 18}" font-weight="600" fill="#212121">${escape(panel.title)} <tspan font-weight="400" fill="#757575">(${escape(panel.unit)})</tspan></text>`);
    const max = Math.max(...panel.bars.map((b) => b.value));
    const span = panelWidth - label - 90;
    panel.bars.forEach((bar, i) => {
      const by = y + TITLE + i * (BAR + GAP) - 8;
      const w = max > 0 ? Math.max(1, (bar.value / max) * span) : 1;
      const bold = bar.name.startsWith('rrxc') ? ' font-weight="600"' : '';
      parts.push(
        `<text x="${x + label - 6}" y="${by + BAR - 3}" text-anchor="end" fill="#424242"${bold}>${escape(bar.name)}</text>`,
        `<rect x="${x + label}" y="${by}" width="${w.toFixed(1)}" height="${BAR}" rx="2" fill="${chart.colors[bar.name] ?? '#78909c'}"/>`,
        `<text x="${(x + label + w + 5).toFixed(1)}" y="${by + BAR - 3}" fill="#424242"${bold}>${panel.lowerIsBetter ? `${Math.round(bar.value)} B` : format(bar.value)}</text>`,
      );
    });
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
