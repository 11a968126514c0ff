// Memory per open exchange, and whether the heap returns once they end; the
// same million open exchanges are the background of the largest routing run.
// Implementations run one after the other here (a million open exchanges
// each, held at once, would be several GB and each one's GC would tax the
// others), so these routing rounds are consecutive, not interleaved.
import { fullGc, median, settledHeap } from './harness.js';
import type { Implementation } from './implementations/types.js';
import { endBackground, LONG_DEADLINE, openBackground, routeRound, routingResult, type Config, type Measurement, type ScenarioResult } from './scenarios.js';

export interface MemoryFigures {
  /** Heap bytes per open one-request exchange: library state only (payload shared, wire messages dropped). */
  readonly bytesPerExchange: number;
  /** Heap after warm-up, before opening them (bytes). */
  readonly baseline: number;
  /** Heap with all of them open (bytes). */
  readonly open: number;
  /** Heap after all of them ended (bytes). */
  readonly after: number;
  /** (after − baseline) / baseline. */
  readonly afterChange: number;
}

export interface MemoryResult {
  readonly open: number;
  readonly method: string;
  readonly results: Readonly<Record<string, MemoryFigures>>;
}

export async function memoryAndRouting(
  implementations: readonly Implementation[],
  config: Config,
  log: (line: string) => void,
): Promise<{ memory: MemoryResult; routing: ScenarioResult }> {
  const { open, warmup } = config.memory;
  const { batch } = config.routing;
  const memory: Record<string, MemoryFigures> = {};
  const routing: Record<string, Measurement> = {};
  for (const impl of implementations) {
    log(`  ${impl.name}: warm-up, open ${open.toLocaleString('en-US')}, route, end`);
    const instance = impl.create({ timeout: LONG_DEADLINE, autoReply: false });
    // Warm-up brings the instance to its steady state before the baseline:
    // JIT-compiled paths, and rrxc's duplicate window holding its bound of
    // answered IDs, as in any service that has run for a minute.
    for (let done = 0; done < warmup; done += batch) await routeRound(instance, batch);
    // Both sets of rounds follow a full collection, as the heap measurements
    // do; after one, an untimed round compiles again what the collection
    // deoptimized (objects none of which was alive then lose their hidden
    // classes; see `interleaved`).
    const measureRounds = async (): Promise<number[]> => {
      await routeRound(instance, batch);
      const rounds: number[] = [];
      for (let round = 0; round < config.rounds; round++) rounds.push(await routeRound(instance, batch));
      return rounds;
    };
    // Routing with nothing else open, measured as with the million open
    // below: the like-for-like reference for flatness.
    fullGc();
    const alone = await measureRounds();
    // Allocated before the baseline, so holding the handles costs nothing measured.
    const promises = new Array<unknown>(open).fill(undefined);
    const keys = new Array<string | number>(open).fill(0);
    const baseline = settledHeap();
    await openBackground(instance, open, promises, keys);
    const held = settledHeap();
    const rounds = await measureRounds();
    routing[impl.name] = { median: median(rounds), rounds, detail: { aloneMedian: median(alone) } };

    await endBackground(instance, promises, keys, open);
    promises.fill(undefined);
    keys.fill(0);
    const after = settledHeap();
    memory[impl.name] = {
      bytesPerExchange: (held - baseline) / open,
      baseline,
      open: held,
      after,
      afterChange: (after - baseline) / baseline,
    };
    await instance.close();
  }
  return {
    memory: {
      open,
      method: `after ${warmup} warm-up exchanges (steady state), ${open} one-request exchanges opened and held; heapUsed after two forced full GCs, before and after, divided by ${open}; payload shared, wire messages not kept (only each request's ID); then all answered, and the heap measured again`,
      results: memory,
    },
    routing: routingResult(open, batch, routing, 'implementations one after the other, each first routing the same rounds with nothing else open (the reference for the flatness target)'),
  };
}
