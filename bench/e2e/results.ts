// The shape of bench/results/e2e.json, and the medians every table, target
// and chart reads: one place that knows how the samples of a cell combine.
import { median } from '../harness.js';
import type { Machine, Target } from '../report.js';
import type { Broker } from './config.js';
import type { Sample } from './measure.js';
import type { Skipped, VariantInfo } from './variant.js';

/** One variant at one concurrency: every round's sample, and their medians (each figure's own). */
export interface CellResult {
  readonly broker: Broker;
  readonly variant: string;
  readonly concurrency: number;
  readonly samples: readonly Sample[];
  readonly median: {
    readonly perSecond: number;
    readonly p50: number;
    readonly p99: number;
    readonly cpuPerRequest: number;
  };
}

export interface E2eResults {
  readonly version: 1;
  readonly date: string;
  readonly quick: boolean;
  readonly command: string;
  readonly durationSeconds: number;
  readonly machine: Machine;
  /** os.loadavg() (1, 5, 15 min) when the run started and when it ended: how busy the shared machine was. */
  readonly loadavg: { readonly start: readonly number[]; readonly end: readonly number[] };
  readonly config: { readonly rounds: number; readonly seconds: number; readonly warmupSeconds: number; readonly concurrencies: readonly number[] };
  /** Each broker's server and version. */
  readonly servers: Readonly<Partial<Record<Broker, string>>>;
  readonly variants: readonly VariantInfo[];
  readonly skipped: readonly Skipped[];
  /** Variants that failed mid-run, with the error; their cells hold the rounds before. */
  readonly crashed: readonly { readonly broker: Broker; readonly variant: string; readonly error: string }[];
  readonly cells: readonly CellResult[];
  readonly targets: readonly Target[];
}

export function cellResult(broker: Broker, variant: string, concurrency: number, samples: readonly Sample[]): CellResult {
  const of = (figure: keyof CellResult['median']): number => median(samples.map((s) => s[figure]));
  return {
    broker,
    variant,
    concurrency,
    samples,
    median: { perSecond: of('perSecond'), p50: of('p50'), p99: of('p99'), cpuPerRequest: of('cpuPerRequest') },
  };
}

/** The cell of the variant with `role` on `broker` at `concurrency`, if it ran. */
export function findCell(results: Pick<E2eResults, 'cells' | 'variants'>, broker: Broker, role: VariantInfo['role'], concurrency: number): CellResult | undefined {
  const names = results.variants.filter((v) => v.broker === broker && v.role === role).map((v) => v.name);
  return results.cells.find((c) => c.broker === broker && c.concurrency === concurrency && names.includes(c.variant) && c.samples.length > 0);
}
