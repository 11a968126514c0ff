// What one run of the end-to-end suite is: broker addresses, the run's
// unique names, the message every variant sends, and the command line.

/** Where the brokers are; each can be pointed elsewhere by its usual variable. */
export const URLS = {
  rabbitmq: process.env['AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672',
  redis: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  nats: process.env['NATS_URL'] ?? '127.0.0.1:4222',
} as const;

export type Broker = keyof typeof URLS;
export const BROKERS: readonly Broker[] = ['rabbitmq', 'redis', 'nats'];

/**
 * The deadline every variant gets, like for like: rrxc's default, nats.js'
 * and rabbitmq-client's are set to it, the hand-rolled timers use it. No
 * request comes near it; it is there because each of them pays for one.
 */
export const TIMEOUT_MS = 30_000;

/**
 * What a caller sends and the echo worker sends back. `seq` is unique per
 * call, so a caller that got somebody else's reply is caught (a benchmark
 * of correlation must check the correlation).
 */
export interface Echo {
  readonly seq: number;
  readonly text: string;
}

/** A small JSON body, the size of an everyday RPC (~60 bytes encoded). */
export const TEXT = 'the quick brown fox jumps over the lazy dog';

export interface RunConfig {
  readonly quick: boolean;
  readonly rounds: number;
  /** Timed seconds per variant and concurrency per round. */
  readonly seconds: number;
  /** Untimed seconds before each timed window: connections warm, JIT settled, queues in steady state. */
  readonly warmupSeconds: number;
  readonly concurrencies: readonly number[];
  readonly brokers: readonly Broker[];
  /** Only the variants whose name contains one of these (for profiling one); all when absent. */
  readonly variants: readonly string[] | undefined;
  /** Unique per run: every queue, list, key prefix and subject of the run starts with it. */
  readonly runId: string;
}

/**
 * `--quick`: one short round, the CI smoke (well inside a minute);
 * `--rounds=N`, `--seconds=S`, `--concurrency=1,16`, `--only=redis,nats`,
 * `--variants=rrxc,hand` (names containing either; a variant's whole name, e.g.
 * `--variants=rrxc consumeReplies`, picks that one alone).
 */
export function parseArgs(argv: readonly string[]): RunConfig {
  const option = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const quick = argv.includes('--quick') || process.env['BENCH_QUICK'] === '1';
  const number = (name: string, fallback: number): number => {
    const given = option(name);
    const value = given === undefined ? fallback : Number(given);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${given}`);
    return value;
  };
  const only = option('only')?.split(',');
  for (const name of only ?? []) if (!(BROKERS as readonly string[]).includes(name)) throw new Error(`--only: unknown broker ${name}; known: ${BROKERS.join(', ')}`);
  return {
    quick,
    rounds: Math.round(number('rounds', quick ? 1 : 10)),
    seconds: number('seconds', quick ? 0.3 : 2),
    warmupSeconds: number('warmup', quick ? 0.1 : 0.25),
    concurrencies: (option('concurrency') ?? '1,16,128').split(',').map(Number),
    brokers: only === undefined ? BROKERS : BROKERS.filter((b) => only.includes(b)),
    variants: option('variants')?.split(','),
    runId: `rrxc-e2e-${process.pid}-${Date.now().toString(36)}`,
  };
}
