// The SVG chart of docs/benchmarks.svg, written by hand from the results
// JSON: one panel per scenario (bars scaled to that panel's best, since the
// scenarios' rates differ by orders of magnitude) and one for memory.
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

interface Panel {
  readonly title: string;
  readonly unit: string;
  readonly bars: readonly { readonly name: string; readonly value: number }[];
  /** Bytes: shorter is better. */
  readonly lowerIsBetter: boolean;
}

const WIDTH = 1000;
const COLUMNS = 2;
const PANEL_WIDTH = WIDTH / COLUMNS;
const LABEL = 130;
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
  const panelHeight = TITLE + names.length * (BAR + GAP) + 16;
  const rows = Math.ceil(panels.length / COLUMNS);
  const header = 56;
  const height = header + rows * panelHeight + 8;
  const m = results.machine;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="17" font-weight="600" fill="#212121">rrxc benchmarks: medians, higher is better (memory: lower)</text>`,
    `<text x="16" y="43" fill="#616161">${escape(`${m.cpus} × ${m.cpuModel}, Node ${m.node}, ${results.date.slice(0, 10)}${results.quick ? ' (quick smoke run)' : ''}`)}</text>`,
  ];
  panels.forEach((panel, index) => {
    const x = (index % COLUMNS) * PANEL_WIDTH + 16;
    const y = header + Math.floor(index / COLUMNS) * panelHeight;
    parts.push(`<text x="${x}" y="${y + 18}" font-weight="600" fill="#212121">${escape(panel.title)} <tspan font-weight="400" fill="#757575">(${escape(panel.unit)})</tspan></text>`);
    const max = Math.max(...panel.bars.map((b) => b.value));
    const span = PANEL_WIDTH - LABEL - 90;
    panel.bars.forEach((bar, i) => {
      const by = y + TITLE + i * (BAR + GAP) - 8;
      const w = max > 0 ? Math.max(1, (bar.value / max) * span) : 1;
      const bold = bar.name.startsWith('rrxc') ? ' font-weight="600"' : '';
      parts.push(
        `<text x="${x + LABEL - 6}" y="${by + BAR - 3}" text-anchor="end" fill="#424242"${bold}>${escape(bar.name)}</text>`,
        `<rect x="${x + LABEL}" y="${by}" width="${w.toFixed(1)}" height="${BAR}" rx="2" fill="${COLORS[bar.name] ?? '#78909c'}"/>`,
        `<text x="${(x + LABEL + w + 5).toFixed(1)}" y="${by + BAR - 3}" fill="#424242"${bold}>${panel.lowerIsBetter ? `${Math.round(bar.value)} B` : si(bar.value)}</text>`,
      );
    });
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
