// The one interface every implementation is driven through, so that each
// scenario runs the same driver code for all of them.
import type { Payload, Remote } from '../remote.js';

export interface InstanceOptions {
  /**
   * Deadline per exchange in ms. Every implementation that has deadlines
   * uses it (like for like: naive has one timer per request by definition);
   * the floor and "rrxc (no timeout)" ignore it.
   */
  readonly timeout: number;
  /** Whether the remote answers on its own (next turn) or when the scenario flushes it. */
  readonly autoReply: boolean;
}

/** What a real service sets as its deadline when the scenario does not need a short one. */
export const DEFAULT_DEADLINE = 30_000;

export interface Instance {
  /**
   * Starts one exchange of `requests` requests. The promise settles (either
   * way) when every reply came or the exchange timed out.
   */
  exchange(requests: number, payload: Payload): Promise<unknown>;
  /** The transport, for scenarios that flush replies themselves. */
  readonly remote: Remote<any>;
  /**
   * Exchanges that ended unanswered and were recorded for rollback without
   * rejecting (rrxc resolves with a `timed-out` result; the others reject,
   * and the driver counts those).
   */
  readonly rolledBack: number;
  /**
   * The smallest thing that lets the remote answer a sent request later
   * (its correlation ID), so that the memory scenario can hold a million
   * unanswered requests without counting the wire messages as library heap.
   */
  keyOf(message: any): string | number;
  /** Feeds the reply for `key` back in, the same way the remote does. */
  reply(key: string | number): void;
  /** Releases timers and state. */
  close(): Promise<void> | void;
}

export interface Implementation {
  /** Key in results. */
  readonly name: string;
  /** How it is wired, for the docs. */
  readonly wiring: string;
  /** False for the floor: it has no deadline at all, so the timeout mix does not apply. */
  readonly timeouts: boolean;
  create(options: InstanceOptions): Instance;
}
