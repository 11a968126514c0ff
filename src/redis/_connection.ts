import { Redis, type RedisOptions } from 'ioredis';
import { withTimeout } from '../timing/with-timeout.js';
import type { Clock } from '../clock.js';
import { InvalidArgumentError } from '../errors.js';
import { describeCause } from '../_describe.js';
import type { RedisConnection } from './_scripts.js';

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

/** Throws unless exactly one of the mutually exclusive `redis` and `url` options was given, and it is of the right kind. */
export function checkConnectionOptions(component: string, redis: unknown, url: unknown): void {
  if ((redis === undefined) === (url === undefined)) {
    throw new InvalidArgumentError(`${component} needs exactly one of \`redis\` (an ioredis connection) and \`url\`, got ${redis === undefined ? 'neither' : 'both'}`);
  }
  if (url !== undefined && typeof url !== 'string') {
    throw new InvalidArgumentError(`url must be a string, got ${typeof url}`);
  }
  if (redis !== undefined && (typeof redis !== 'object' || redis === null || typeof (redis as { defineCommand?: unknown }).defineCommand !== 'function')) {
    throw new InvalidArgumentError(`redis must be an ioredis Redis or Cluster connection, got ${redis === null ? 'null' : typeof redis}`);
  }
}

/**
 * Resolves once `redis` is ready to take commands; rejects after `ms` with
 * the last connection error as `cause`.
 */
export async function whenReady(redis: RedisConnection, ms: number, clock: Clock): Promise<void> {
  if (redis.status === 'ready') return;
  let lastError: unknown;
  let onReady!: () => void;
  let onEnd!: () => void;
  const onError = (error: unknown): void => {
    lastError = error;
  };
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onEnd = () => reject(new Error('the connection was closed', { cause: lastError }));
  });
  redis.on('ready', onReady).on('error', onError).on('end', onEnd);
  try {
    if (redis.status === 'wait') redis.connect().catch(() => undefined);
    await withTimeout(ready, ms, `not connected within ${ms} ms`, clock).catch((error: unknown) => {
      if (lastError !== undefined && error instanceof Error && error.cause === undefined) {
        throw new Error(`${error.message}: ${describeCause(lastError)}`, { cause: lastError });
      }
      throw error;
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


/** Closes a connection we own: QUIT, bounded, then a hard disconnect; resolves once its socket is closed. */
export async function release(redis: RedisConnection, ms: number, clock: Clock): Promise<void> {
  try {
    if (redis.status === 'ready') await withTimeout(redis.quit(), ms, 'QUIT timed out', clock);
  } catch {
    // Closing anyway below.
  }
  // Only a connection with a socket emits 'end'; one between reconnection
  // attempts just stops trying.
  const open = redis.status === 'connecting' || redis.status === 'connect' || redis.status === 'ready' || redis.status === 'close';
  const ended = open ? new Promise<void>((resolve) => redis.once('end', resolve)) : undefined;
  redis.disconnect();
  if (ended !== undefined) await withTimeout(ended, ms, 'disconnect timed out', clock).catch(() => undefined);
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
