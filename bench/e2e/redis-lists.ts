// Redis lists as a queue, for the echo worker and every list variant alike,
// so that they differ only in how they correlate: requests LPUSHed, popped
// at the other end (BRPOP, FIFO), one blocking connection per consumer.
import type { Redis } from 'ioredis';

/** A job on the run's jobs list. */
export interface ListJob {
  readonly id: string;
  /** The list the reply goes to. */
  readonly replyTo: string;
  readonly body: unknown;
}

/** A reply on a caller's reply list. */
export interface ListReply {
  readonly id: string;
  readonly body: unknown;
  /** How often it was put back (rrxc's reply handler bounds it). */
  readonly requeues?: number;
}

/** Seconds a blocking pop waits before it asks again. */
const POP_TIMEOUT = 1;
/** Most messages taken per non-blocking pop after a blocking one. */
const DRAIN = 256;

/**
 * Pops `key` until stopped: a blocking BRPOP for the first message, then
 * RPOP with a count for whatever else is already there — one round trip per
 * batch instead of per message, which at 128 in flight is the difference
 * between measuring the consumer and measuring Redis round trips.
 *
 * Stop it by aborting `signal` and disconnecting `connection` (which ends
 * the pending BRPOP); the returned promise then resolves.
 */
export async function popLoop(connection: Redis, key: string, onMessage: (raw: string) => void, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    let first: [string, string] | null;
    try {
      first = await connection.brpop(key, POP_TIMEOUT);
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    if (first === null) continue;
    onMessage(first[1]);
    for (;;) {
      let more: string[] | null;
      try {
        more = await connection.rpop(key, DRAIN);
      } catch (error) {
        if (signal.aborted) return;
        throw error;
      }
      if (more === null) break;
      for (const raw of more) onMessage(raw);
      if (more.length < DRAIN) break;
    }
  }
}

/** ioredis options from a redis:// URL, for clients (BullMQ) that take options rather than a URL. */
export function redisOptions(url: string): { host: string; port: number; username?: string; password?: string; db?: number; tls?: object } {
  const parsed = new URL(url);
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined;
  return {
    host: parsed.hostname,
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
    ...(db === undefined ? {} : { db }),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}
