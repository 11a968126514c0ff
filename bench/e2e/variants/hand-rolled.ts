// The hand-rolled correlation of most codebases — the RabbitMQ tutorial's
// RPC client, and what everyone writes for Redis lists and raw NATS
// inboxes: a Map of correlation ID → resolver, one setTimeout per request.
// One copy for every broker, so "hand-rolled" means the same thing on each.
import { TIMEOUT_MS } from '../config.js';

interface Entry<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (reason: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class Pending<T> {
  readonly #entries = new Map<string, Entry<T>>();

  /** The reply of `id`; rejects after TIMEOUT_MS. Register before sending, so a fast reply is not lost. */
  wait(id: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#entries.delete(id);
        reject(new Error(`no reply for ${id} within ${TIMEOUT_MS} ms`));
      }, TIMEOUT_MS);
      this.#entries.set(id, { resolve, reject, timer });
    });
  }

  /** Hands `value` to the caller waiting for `id`; false when nobody is (late, unknown). */
  settle(id: unknown, value: T): boolean {
    if (typeof id !== 'string') return false;
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    this.#entries.delete(id);
    clearTimeout(entry.timer);
    entry.resolve(value);
    return true;
  }

  /** Fails the caller waiting for `id` (its request could not be sent). */
  fail(id: string, reason: unknown): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    this.#entries.delete(id);
    clearTimeout(entry.timer);
    entry.reject(reason instanceof Error ? reason : new Error(String(reason)));
  }

  /** Fails every caller still waiting and clears their timers (on close). */
  rejectAll(reason: Error): void {
    for (const entry of this.#entries.values()) {
      clearTimeout(entry.timer);
      entry.reject(reason);
    }
    this.#entries.clear();
  }
}
