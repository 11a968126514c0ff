// The suite's targets (issue #14), judged on the medians of one run.
// Reported, never gating: a benchmark on a shared machine informs, it does
// not decide a build.
import type { Target } from '../report.js';
import { BROKERS } from './config.js';
import { findCell, type E2eResults } from './results.js';

const TITLE = { rabbitmq: 'RabbitMQ', redis: 'Redis', nats: 'NATS' } as const;

export function evaluateTargets(results: Pick<E2eResults, 'cells' | 'variants' | 'config'>): Target[] {
  const targets: Target[] = [];
  const ratio = (description: string, value: number, limit: string, pass: boolean): void => void targets.push({ description, value, limit, pass });
  for (const broker of BROKERS) {
    for (const c of results.config.concurrencies) {
      const rrxc = findCell(results, broker, 'rrxc', c);
      const hand = findCell(results, broker, 'hand-rolled', c);
      if (rrxc === undefined) continue;
      const where = `${TITLE[broker]}, ${c} in flight`;
      if (hand !== undefined) {
        const throughput = rrxc.median.perSecond / hand.median.perSecond;
        ratio(`${where}: ${rrxc.variant} / ${hand.variant}, req/s`, throughput, '≥ 1.0 ×', throughput >= 1);
        const cpu = rrxc.median.cpuPerRequest / hand.median.cpuPerRequest;
        ratio(`${where}: ${rrxc.variant} / ${hand.variant}, client CPU per request`, cpu, '≤ 1.1 ×', cpu <= 1.1);
      }
      for (const peer of results.variants.filter((v) => v.broker === broker && v.role === 'peer')) {
        const cell = results.cells.find((x) => x.variant === peer.name && x.concurrency === c && x.samples.length > 0);
        if (cell === undefined) continue;
        const ahead = rrxc.median.perSecond / cell.median.perSecond;
        ratio(`${where}: ${rrxc.variant} ahead of ${peer.name}, req/s`, ahead, '> 1 ×', ahead > 1);
      }
      // RabbitMQ: rrxc's Direct Reply-to mode against the peer that uses Direct Reply-to too (rabbitmq-client).
      const direct = findCell(results, broker, 'rrxc-direct-reply-to', c);
      for (const peer of direct === undefined ? [] : results.variants.filter((v) => v.broker === broker && v.role === 'peer')) {
        const cell = results.cells.find((x) => x.variant === peer.name && x.concurrency === c && x.samples.length > 0);
        if (cell === undefined) continue;
        const ahead = direct!.median.perSecond / cell.median.perSecond;
        ratio(`${where}: ${direct!.variant} ahead of ${peer.name}, req/s`, ahead, '> 1 ×', ahead > 1);
      }
    }
  }
  for (const c of results.config.concurrencies) {
    const forwarded = findCell(results, 'redis', 'backplane-forwarded', c);
    const local = findCell(results, 'redis', 'backplane-local', c);
    if (forwarded === undefined || local === undefined) continue;
    if (c === 16 || c === 128) {
      const share = forwarded.median.perSecond / local.median.perSecond;
      ratio(`Redis, ${c} in flight: RedisBackplane forwarded / same instance, req/s`, share, '≥ 0.7 ×', share >= 0.7);
    }
    if (c === 16) ratio(`Redis, 16 in flight: RedisBackplane forwarded, p99`, forwarded.median.p99, '≤ 5 ms', forwarded.median.p99 <= 5);
  }
  return targets;
}
