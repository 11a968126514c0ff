// Timing, medians and GC helpers shared by every scenario. Nothing here knows
// about an implementation: the harness must cost the same for all of them.
import os from 'node:os';
import { setImmediate as tick } from 'node:timers/promises';

/** Nanoseconds on the monotonic clock. */
export function now(): bigint {
  return process.hrtime.bigint();
}

/** Seconds elapsed since `start` (from {@link now}). */
export function secondsSince(start: bigint): number {
  return Number(now() - start) / 1e9;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * A full, blocking collection. `--expose-gc` is required: without it heap
 * figures would include garbage and every round would inherit the previous
 * one's debt.
 */
export function fullGc(): void {
  const gc = (globalThis as { gc?: (options?: { type?: string }) => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc (npm run bench does)');
  // Twice: weak callbacks and finalizers of the first pass free more on the second.
  gc();
  gc();
}

/**
 * A young-generation collection only: cheap even with a million old objects
 * live, so each timed round starts with an empty nursery without paying for
 * a full mark of the background exchanges.
 */
export function minorGc(): void {
  const gc = (globalThis as { gc?: (options?: { type?: string }) => void }).gc;
  gc?.({ type: 'minor' });
}

/** Heap in use after a full collection. */
export function settledHeap(): number {
  fullGc();
  return process.memoryUsage().heapUsed;
}

/** Lets pending I/O-phase callbacks and microtasks run (one event-loop turn). */
export async function turn(): Promise<void> {
  await tick();
}

/**
 * Rotates `items` by `round` so that, over the rounds, every implementation
 * runs first, last and in between: whoever runs right after a heavy
 * implementation inherits its GC debt and a cold cache.
 */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** What a results file says of the machine it was measured on. */
export function machine(): { cpus: number; cpuModel: string; memoryGiB: number; node: string; v8: string; platform: string } {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.versions.node,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.arch()}`,
  };
}
