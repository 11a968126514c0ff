import { TimeoutError } from 'p-timeout';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import type { Clock } from '../clock.js';
import { BackplaneError } from '../errors.js';
import { describeCause } from '../_describe.js';
import { TimerLane, type DeadlineTarget } from '../timing/timer-lane.js';

/** A connection rrxc/redis works with: a single node (or Sentinel) client, or a Cluster client. */
export type RedisConnection = Redis | Cluster;

/**
 * ioredis options for the connections rrxc/redis makes from a URL. Every
 * choice trades a hidden wait for an explicit, early error:
 *
 * - `enableOfflineQueue: false`: a command issued while disconnected fails at
 *   once instead of waiting, unbounded, for the connection to come back;
 * - `maxRetriesPerRequest: 1`: a command in flight when the connection drops
 *   is retried once, then fails;
 * - `enableAutoPipelining: true`: commands of one event-loop tick go out in
 *   one write (the registration path issues one command per request);
 * - reconnecting keeps going, at most one attempt a second.
 */
const OWNED_CONNECTION_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  enableAutoPipelining: true,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000),
};

/** Makes a connection from a URL: ours to close. */
export function connectUrl(url: string, options: RedisOptions | undefined): Redis {
  return new Redis(url, { ...OWNED_CONNECTION_OPTIONS, ...options });
}

/**
 * Promises bounded by one duration, on one timer lane: a bound costs a
 * queue slot, and the error of one that passes is made when it passes.
 *
 * The one way rrxc/redis bounds a promise — every Redis command, and the
 * waits for a connection — rather than p-timeout (`withTimeout`, which the
 * core keeps for its tag store calls): a timer and an `Error`, stack and
 * all, per call measured 14 µs a bounded command against 1 µs here, and a
 * forwarded reply takes about four bounded commands. With p-timeout on
 * every command, `bench/redis.ts` forwarded 2 600–3 000 replies/s with one
 * in flight, against 3 900–4 100.
 */
export class Bounds {
  readonly #lane: TimerLane<Bound>;
  readonly #within: string;

  /**
   * @param option - The option that sets the duration, for error messages.
   * @param ms - How long each promise may take.
   * @param clock - Where time is read and the timer scheduled.
   */
  constructor(option: string, ms: number, clock: Clock) {
    this.#lane = new TimerLane(ms, clock);
    this.#within = `${option} (${ms} ms)`;
  }

  /** How long each promise may take. */
  get ms(): number {
    return this.#lane.ms;
  }

  /** `promise`, or a rejection with what `timedOut` makes once the duration has passed first. */
  bound<T>(promise: PromiseLike<T>, timedOut: (within: string) => unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const lane = this.#lane;
      const handle = lane.add(new Bound(lane.clock.now() + lane.ms, reject, timedOut, this.#within));
      promise.then(
        (value) => {
          lane.cancel(handle);
          resolve(value);
        },
        (error: unknown) => {
          lane.cancel(handle);
          reject(error);
        },
      );
    });
  }

  /** A Redis command, bounded: one that does not answer in time rejects with a {@link BackplaneError} (`transport`) naming `operation`. */
  command<T>(promise: Promise<T>, operation: string): Promise<T> {
    return this.bound(promise, (within) => new BackplaneError('transport', `Redis ${operation} failed: no answer within ${within}`));
  }

  /** For closing: a command, bounded, whose failure is no news — the connection may be gone already, and the keys expire anyway. */
  async quietly(command: () => PromiseLike<unknown>): Promise<void> {
    try {
      await this.bound(command(), () => undefined);
    } catch {
      // Nothing to do about it while closing.
    }
  }

  /** Drops every bound: the promises still pending stay so. */
  clear(): void {
    this.#lane.clear();
  }
}

/**
 * Resolves once `redis` is ready to take commands. Rejects with the error
 * `fail` makes — the component's own, built once — when the connection is
 * closed first (`cause`: its last error, if any), or when `bounds` ends the
 * wait (`cause`: p-timeout's `TimeoutError`, the last connection error its
 * own `cause`); `why` names what happened, and the last connection error.
 */
export async function whenReady(redis: RedisConnection, bounds: Bounds, fail: (why: string, cause: unknown) => Error): Promise<void> {
  if (redis.status === 'ready') return;
  let lastError: unknown;
  let onReady!: () => void;
  let onEnd!: () => void;
  const onError = (error: unknown): void => {
    lastError = error;
  };
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onEnd = () => reject(fail(lastError === undefined ? 'the connection was closed' : `the connection was closed: ${describeCause(lastError)}`, lastError));
  });
  redis.on('ready', onReady).on('error', onError).on('end', onEnd);
  try {
    if (redis.status === 'wait') redis.connect().catch(() => undefined);
    await bounds.bound(ready, () => {
      const why = `not connected within ${bounds.ms} ms${lastError === undefined ? '' : `: ${describeCause(lastError)}`}`;
      return fail(why, new TimeoutError(why, { cause: lastError }));
    });
  } finally {
    redis.off('ready', onReady).off('error', onError).off('end', onEnd);
  }
}

/**
 * `made` once it is ready, for the components' `connect()`: closed again,
 * and the error rethrown, when it does not get there — so that a failed
 * `connect()` leaves no connection or timer behind.
 */
export async function readyOrClosed<T extends { ready(): Promise<void>; close(): Promise<void> }>(made: T): Promise<T> {
  try {
    await made.ready();
  } catch (error) {
    await made.close();
    throw error;
  }
  return made;
}

/** Closes a connection we own: QUIT, bounded, then a hard disconnect (a QUIT that failed or hung is no reason to keep the socket); resolves once its socket is closed. */
export async function release(redis: RedisConnection, bounds: Bounds): Promise<void> {
  if (redis.status === 'ready') await bounds.quietly(() => redis.quit());
  // Only a connection with a socket emits 'end'; one between reconnection
  // attempts just stops trying.
  const open = redis.status === 'connecting' || redis.status === 'connect' || redis.status === 'ready' || redis.status === 'close';
  const ended = open ? new Promise<void>((resolve) => redis.once('end', resolve)) : undefined;
  redis.disconnect();
  if (ended !== undefined) await bounds.quietly(() => ended);
}

/**
 * Runs `send` with the connection's socket corked, so that the commands it
 * sends (with `sendCommand`) leave together, in one write, when it returns.
 *
 * ioredis' only public way to batch commands into one write is a
 * `Pipeline`, and every `Pipeline` defines an accessor property on itself
 * (`length`), which V8 allocates in old space: the pipeline, its commands,
 * their promises and everything they reach then outlive every scavenge
 * until the next full collection, one per event-loop turn, and the longer
 * scavenges set the forwarding latency's p99. Corking the socket is not an
 * ioredis API (`stream` is its socket, a Node `Duplex`): without it, the
 * commands are sent one write each — correct, only slower.
 */
export function corked(redis: RedisConnection, send: () => void): void {
  const stream = (redis as { stream?: { cork?: unknown; uncork?: unknown } }).stream;
  if (typeof stream?.cork !== 'function' || typeof stream.uncork !== 'function') {
    send();
    return;
  }
  (stream as { cork(): void }).cork();
  try {
    send();
  } finally {
    (stream as { uncork(): void }).uncork();
  }
}

/** A Redis command (or `operation`, a step of several) that failed or timed out, as a {@link BackplaneError}; one that already is stays as it is. */
export function transportError(operation: string, error: unknown): BackplaneError {
  return error instanceof BackplaneError ? error : new BackplaneError('transport', `Redis ${operation} failed: ${describeCause(error)}`, error);
}

/** A bound: `reject` with what `timedOut` makes when its time is up. */
class Bound implements DeadlineTarget {
  constructor(
    readonly deadline: number,
    readonly reject: (error: unknown) => void,
    readonly timedOut: (within: string) => unknown,
    readonly within: string,
  ) {}

  onDeadline(): void {
    this.reject(this.timedOut(this.within));
  }
}
