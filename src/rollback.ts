import type { TagStore } from './adapters.js';
import type { Clock } from './clock.js';
import type { Controller } from './controller.js';
import { TagStoreError } from './errors.js';
import {
  hookErrorChannel,
  rollbackTaggedChannel,
  tagStoreErrorChannel,
  type HookErrorMessage,
  type RollbackMessage,
  type TagStoreErrorMessage,
} from './events.js';
import type { Exchange } from './exchange.js';
import type { ControllerOptions } from './options.js';
import { withTimeout } from './timing/with-timeout.js';
import type { ExchangeResult } from './types.js';

/** What {@link RollbackTags} needs of the controller's options. */
export interface RollbackOptions<Req, Res> {
  readonly rollbackTag: string;
  readonly rollbackTtl: number;
  readonly storeTimeout: number;
  readonly clock: Clock;
  readonly onRollback: ControllerOptions<Req, Res>['onRollback'];
}

/**
 * The controller's side of its tag store: every call bounded by
 * `storeTimeout` and failing as a {@link TagStoreError}, the rollback tags an
 * ended exchange leaves, the guard that keeps their IDs `rolled-back` while
 * an asynchronous store is still writing them, and the `onRollback` hook.
 */
export class RollbackTags<Req, Res> {
  readonly #store: TagStore;
  readonly #options: RollbackOptions<Req, Res>;
  readonly #controller: Controller<Req, Res>;
  /**
   * IDs whose rollback tag an asynchronous store is still writing, with the
   * number of writes in flight for each: an ID reused by two exchanges may
   * be written twice at once.
   */
  readonly #tagging = new Map<string, number>();
  /** Rollback tag writes in flight, awaited by {@link drain}. */
  readonly #writes = new Set<Promise<void>>();

  /**
   * @param store - Where the tags live.
   * @param options - The controller's resolved options.
   * @param controller - Named in the channel messages.
   */
  constructor(store: TagStore, options: RollbackOptions<Req, Res>, controller: Controller<Req, Res>) {
    this.#store = store;
    this.#options = options;
    this.#controller = controller;
  }

  /** Whether a rollback tag for `id` is being written: a reply for it is already `rolled-back`. */
  isTagging(id: string): boolean {
    return this.#tagging.has(id);
  }

  /**
   * Calls the tag store; an asynchronous answer is bounded by `storeTimeout`.
   * Any failure becomes a {@link TagStoreError}.
   */
  call<T>(operation: string, call: () => T | PromiseLike<T>): T | Promise<T> {
    let answer: T | PromiseLike<T>;
    try {
      answer = call();
    } catch (error) {
      throw new TagStoreError(operation, error);
    }
    if (!isThenable(answer)) return answer;
    return this.#bounded(answer).catch((error: unknown) => {
      throw new TagStoreError(operation, error);
    });
  }

  /**
   * Tags the IDs `exchange` left unanswered. Synchronous stores are done on return; for asynchronous ones the IDs
   * count as rolled back until the writes settle, so that no late reply
   * slips through as `unmatched` meanwhile.
   *
   * @returns A promise when the tags are written asynchronously.
   */
  tagUnanswered(exchange: Exchange<Req, Res>, result: ExchangeResult<Req, Res>): Promise<void> | undefined {
    const ids = result.unanswered;
    const { rollbackTag: tag, rollbackTtl: ttl } = this.#options;
    let pending: PromiseLike<void>[] | undefined;
    let failure: unknown;
    for (const id of ids) {
      try {
        const written = this.#store.tag(id, tag, ttl);
        if (isThenable(written)) (pending ??= []).push(written);
      } catch (error) {
        failure = error;
      }
    }
    if (rollbackTaggedChannel.hasSubscribers) {
      rollbackTaggedChannel.publish({ controller: this.#controller, exchange, correlationIds: ids, tag, ttl } satisfies RollbackMessage);
    }
    if (failure !== undefined) this.#reportStoreFailure(new TagStoreError('tag', failure), ids);
    if (pending === undefined) return undefined;

    for (const id of ids) this.#tagging.set(id, (this.#tagging.get(id) ?? 0) + 1);
    // allSettled: one failed write must not end the guard while others are
    // still in flight. One storeTimeout for the exchange's writes together,
    // not one timer per ID.
    const write = this.#bounded(Promise.allSettled(pending))
      .then(
        (settled) => {
          const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
          if (failed !== undefined) this.#reportStoreFailure(new TagStoreError('tag', failed.reason), ids);
        },
        (timeout: unknown) => this.#reportStoreFailure(new TagStoreError('tag', timeout), ids),
      )
      .then(() => {
        for (const id of ids) {
          const left = this.#tagging.get(id)! - 1;
          if (left === 0) this.#tagging.delete(id);
          else this.#tagging.set(id, left);
        }
        this.#writes.delete(write);
      });
    this.#writes.add(write);
    return write;
  }

  /** Resolves once every rollback tag write has settled, those started meanwhile included. */
  async drain(): Promise<void> {
    while (this.#writes.size > 0) await Promise.allSettled([...this.#writes]);
  }

  #bounded<T>(answer: PromiseLike<T>): Promise<T> {
    const { storeTimeout, clock } = this.#options;
    return withTimeout(answer, storeTimeout, `no answer within storeTimeout (${storeTimeout} ms)`, clock);
  }

  #reportStoreFailure(error: TagStoreError, correlationIds: readonly string[]): void {
    if (tagStoreErrorChannel.hasSubscribers) {
      tagStoreErrorChannel.publish({ controller: this.#controller, error, correlationIds } satisfies TagStoreErrorMessage);
    } else {
      process.emitWarning(error);
    }
  }

  /**
   * Runs `onRollback` for an exchange whose tags are written, after the
   * current operation, so a hook that re-enters the controller sees a
   * settled state.
   */
  runHook(result: ExchangeResult<Req, Res>): void {
    const hook = this.#options.onRollback;
    if (hook === undefined) return;
    queueMicrotask(() => {
      try {
        const returned = hook(result.unanswered, result);
        if (isThenable(returned)) returned.then(undefined, (error: unknown) => this.#reportHookFailure(error));
      } catch (error) {
        this.#reportHookFailure(error);
      }
    });
  }

  #reportHookFailure(error: unknown): void {
    if (hookErrorChannel.hasSubscribers) {
      hookErrorChannel.publish({ controller: this.#controller, hook: 'onRollback', error } satisfies HookErrorMessage);
    } else {
      process.emitWarning(`onRollback hook failed: ${error instanceof Error ? error.stack : String(error)}`, 'RrxcHookWarning');
    }
  }
}

/** Whether `value` is a promise-like: adapters may answer either way. */
export function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null)?.then === 'function';
}
