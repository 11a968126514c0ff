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
import type { Awaitable, ExchangeResult } from './types.js';

/** What {@link RollbackTags} needs of the controller's options. */
export interface RollbackOptions<Req, Res> {
  readonly rollbackTag: string;
  readonly committedTag: string;
  readonly rollbackTtl: number;
  readonly storeTimeout: number;
  readonly clock: Clock;
  readonly onRollback: ControllerOptions<Req, Res>['onRollback'];
}

/** How the claim on one unanswered ID came out. */
export type Decision = 'rolled-back' | 'committed' | 'undecided';

/** An ID whose rollback claim failed, kept to claim again. */
interface Undecided<Req, Res> {
  readonly exchange: Exchange<Req, Res>;
  /** Clock time after which its rollback tag would have expired: no point claiming it then. */
  readonly until: number;
}

/** First wait before claiming undecided IDs again; it doubles up to {@link MAX_RETRY_DELAY}. */
const FIRST_RETRY_DELAY = 1_000;
const MAX_RETRY_DELAY = 30_000;

/**
 * The controller's side of its tag store: every call bounded by
 * `storeTimeout` and failing as a {@link TagStoreError}; the rollback claims
 * an ended exchange makes on its unanswered IDs, and what late replies are
 * told while those claims are in flight or could not be made; the
 * `onRollback` hook.
 */
export class RollbackTags<Req, Res> {
  readonly #store: TagStore;
  readonly #options: RollbackOptions<Req, Res>;
  readonly #controller: Controller<Req, Res>;
  /** `[committedTag]`: what a rollback claim yields to. Made once. */
  readonly #rivals: readonly string[];
  /** IDs whose rollback claim an asynchronous store is still answering: a late reply waits for it. */
  readonly #deciding = new Map<string, Promise<Decision>>();
  /** Claim batches in flight, awaited by {@link drain}. */
  readonly #claims = new Set<Promise<void>>();
  /** IDs the application registered again, while their earlier rollback tag is being removed: their end's claim comes after. */
  readonly #cleaning = new Map<string, Promise<void>>();
  /** Claims made again for undecided IDs, in flight: one per ID at a time. */
  readonly #claimingAgain = new Map<string, Promise<Decision>>();
  /** IDs whose claim failed; claimed again in the background and on a late reply. */
  readonly #undecided = new Map<string, Undecided<Req, Res>>();
  #retryTimer: unknown;
  #retryDelay = FIRST_RETRY_DELAY;
  #stopped = false;

  /**
   * @param store - Where the tags live.
   * @param options - The controller's resolved options.
   * @param controller - Named in the channel messages.
   */
  constructor(store: TagStore, options: RollbackOptions<Req, Res>, controller: Controller<Req, Res>) {
    this.#store = store;
    this.#options = options;
    this.#controller = controller;
    this.#rivals = [options.committedTag];
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
   * What a reply for `id`, which no open exchange holds, is told while the
   * rollback claim of an ended exchange decides it — or `undefined` when no
   * claim is in flight or left undecided, and the store itself answers.
   * An undecided ID is claimed again; if the store still cannot answer, the
   * reply is rejected with the {@link TagStoreError}: its outcome is unknown.
   */
  pendingDecision(id: string): Promise<Decision> | undefined {
    const deciding = this.#deciding.get(id);
    if (deciding !== undefined) return deciding.then((decision) => (decision === 'undecided' ? this.#claimAgain(id) : decision));
    return this.#undecided.has(id) ? this.#claimAgain(id) : undefined;
  }

  /**
   * Forgets the rollback tag an earlier attempt under an ID the application
   * chose left on it: a retry that reuses the ID (a re-consumed batch,
   * `order-<offset>`) is not reported rolled back because of the attempt
   * before. A committed tag stays: the work under that ID is done, and the
   * retry's worker and end are told so. The removal is issued before the
   * request can leave; this exchange's own rollback claim on the ID waits
   * for it, whatever order the store's connections keep.
   */
  startClean(id: string): void {
    // The earlier attempt's claim is not retried for the new one; one still
    // in flight is let land first, so that the removal comes after it.
    // (The size checks keep the common case — nothing pending — to one
    // store call: this runs for every ID the application registers.)
    if (this.#undecided.size > 0) this.#undecided.delete(id);
    const before = this.#deciding.size + this.#claimingAgain.size === 0 ? undefined : (this.#deciding.get(id) ?? this.#claimingAgain.get(id));
    let removal: Promise<void>;
    if (before === undefined) {
      let answer: boolean | PromiseLike<boolean>;
      try {
        answer = this.#store.untag(id, this.#options.rollbackTag);
      } catch (error) {
        this.#reportUntag(error, id);
        return;
      }
      if (!isThenable(answer)) return;
      removal = this.#bounded(answer).then(noop, (error: unknown) => this.#reportUntag(error, id));
    } else {
      const untag = (): PromiseLike<boolean> | boolean => this.#store.untag(id, this.#options.rollbackTag);
      removal = before
        .then(noop, noop)
        .then(untag)
        .then((answer) => (isThenable(answer) ? this.#bounded(answer) : answer))
        .then(noop, (error: unknown) => this.#reportUntag(error, id));
    }
    this.#cleaning.set(id, removal);
    void removal.then(() => {
      if (this.#cleaning.get(id) === removal) this.#cleaning.delete(id);
    });
  }

  /**
   * Claims rollback for the IDs `exchange` left unanswered, against the
   * committed tag, and sorts them into the result: `unanswered` (tagged),
   * `committed` (a worker claimed them first) and `undecided` (the store
   * failed). A synchronous store is done on return; for an asynchronous one
   * late replies to these IDs wait for the claims.
   *
   * @returns A promise when the store answers asynchronously; the result is sorted once it settles.
   */
  claimUnanswered(exchange: Exchange<Req, Res>, result: ExchangeResult<Req, Res>): Promise<void> | undefined {
    const ids = result.unanswered;
    // The clean starts this end waits for: a later one means the ID was registered again meanwhile.
    const cleanings = this.#cleaning.size === 0 ? NO_CLEANINGS : ids.map((id) => this.#cleaning.get(id));
    // Made only when a claim is asynchronous or not won: the common end
    // (every ID rolled back by a synchronous store) allocates nothing here.
    let decisions: (Decision | PromiseLike<Decision>)[] | undefined;
    let asynchronous = false;
    let failure: unknown;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      let decision: Decision | PromiseLike<Decision>;
      const cleaning = cleanings[i];
      if (cleaning !== undefined) {
        decision = cleaning.then(() => this.#claim(id)).then((holder) => this.#decision(holder));
      } else {
        try {
          const answer = this.#claim(id);
          decision = isThenable(answer) ? Promise.resolve(answer).then((holder) => this.#decision(holder)) : this.#decision(answer);
        } catch (error) {
          failure = error;
          decision = 'undecided';
        }
      }
      if (typeof decision !== 'string') asynchronous = true;
      else if (decision === 'rolled-back' && decisions === undefined) continue;
      decisions ??= new Array<Decision | PromiseLike<Decision>>(ids.length).fill('rolled-back', 0, i);
      decisions[i] = decision;
    }
    if (failure !== undefined) this.reportStoreFailure(new TagStoreError('claim', failure), ids);
    if (decisions === undefined) {
      this.#publishTagged(exchange, ids);
      return undefined;
    }
    if (!asynchronous) {
      this.#sort(exchange, result, decisions as Decision[], cleanings);
      return undefined;
    }

    // One storeTimeout for the exchange's claims together, not one timer per ID.
    const settled = this.#bounded(Promise.allSettled(decisions)).then(
      (answers) => {
        let failed: unknown;
        const sorted = answers.map((answer): Decision => {
          if (answer.status === 'fulfilled') return answer.value;
          failed ??= answer.reason;
          return 'undecided';
        });
        if (failed !== undefined) this.reportStoreFailure(new TagStoreError('claim', failed), ids);
        return sorted;
      },
      (timeout: unknown) => {
        this.reportStoreFailure(new TagStoreError('claim', timeout), ids);
        return ids.map((): Decision => 'undecided');
      },
    );
    const guards = ids.map((id, i) => {
      const guard = settled.then((sorted) => sorted[i]!);
      this.#deciding.set(id, guard);
      return guard;
    });
    const claims = settled.then((sorted) => {
      ids.forEach((id, i) => {
        if (this.#deciding.get(id) === guards[i]) this.#deciding.delete(id);
      });
      this.#sort(exchange, result, sorted, cleanings);
      this.#claims.delete(claims);
    });
    this.#claims.add(claims);
    return claims;
  }

  /** Resolves once every claim in flight has settled, those started meanwhile included. */
  async drain(): Promise<void> {
    while (this.#claims.size > 0) await Promise.allSettled([...this.#claims]);
  }

  /**
   * Stops claiming undecided IDs again (the controller closed); reports
   * those still undecided, whose rollback was never recorded.
   */
  stop(): void {
    this.#stopped = true;
    if (this.#retryTimer !== undefined) this.#options.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#undecided.size > 0) {
      const ids = [...this.#undecided.keys()];
      this.#undecided.clear();
      this.reportStoreFailure(new TagStoreError('claim', new Error(`closed with ${ids.length} rollback claim(s) never recorded`)), ids);
    }
  }

  /**
   * Sorts the unanswered IDs of `result` by their claims; publishes and
   * keeps what needs it.
   *
   * @param cleanings - The clean start each claim waited for, by index.
   */
  #sort(exchange: Exchange<Req, Res>, result: ExchangeResult<Req, Res>, decisions: readonly Decision[], cleanings: readonly (Promise<void> | undefined)[]): void {
    const ids = result.unanswered;
    if (decisions.every((d) => d === 'rolled-back')) {
      this.#publishTagged(exchange, ids);
      return;
    }
    const sorted: Record<Decision, string[]> = { 'rolled-back': [], committed: [], undecided: [] };
    ids.forEach((id, i) => sorted[decisions[i]!].push(id));
    const writable = result as { -readonly [K in keyof ExchangeResult]: ExchangeResult[K] };
    writable.unanswered = sorted['rolled-back'];
    writable.committed = sorted.committed;
    // Replies held when the exchange closed are undecided already (see Exchange.hold).
    writable.undecided = result.undecided.length === 0 ? sorted.undecided : [...result.undecided, ...sorted.undecided];
    if (sorted['rolled-back'].length > 0) this.#publishTagged(exchange, sorted['rolled-back']);
    if (sorted.undecided.length === 0) return;
    const until = this.#options.rollbackTtl === 0 ? Infinity : this.#options.clock.now() + this.#options.rollbackTtl;
    ids.forEach((id, i) => {
      // Registered again since this end began: the new attempt owns the ID.
      const cleaning = this.#cleaning.get(id);
      if (decisions[i] === 'undecided' && (cleaning === undefined || cleaning === cleanings[i])) this.#undecided.set(id, { exchange, until });
    });
    if (this.#undecided.size > 0) this.#scheduleRetry();
  }

  /** The rollback claim on `id`, against the committed tag. */
  #claim(id: string): Awaitable<string | undefined> {
    const { rollbackTag, rollbackTtl } = this.#options;
    return this.#store.claim(id, rollbackTag, rollbackTtl, this.#rivals);
  }

  #decision(holder: string | undefined): Decision {
    return holder === this.#options.committedTag ? 'committed' : 'rolled-back';
  }

  /** Claims an undecided ID again, for a late reply: its decision, or a rejection with the store's error. */
  #claimAgain(id: string): Promise<Decision> {
    const inFlight = this.#claimingAgain.get(id);
    if (inFlight !== undefined) return inFlight;
    let answer: string | undefined | Promise<string | undefined>;
    try {
      answer = this.call('claim', () => this.#claim(id));
    } catch (error) {
      return Promise.reject(error);
    }
    const claim = Promise.resolve(answer)
      .then((holder) => {
        const decision = this.#decision(holder);
        const undecided = this.#undecided.get(id);
        if (undecided !== undefined) {
          this.#undecided.delete(id);
          if (decision === 'rolled-back') this.#publishTagged(undecided.exchange, [id]);
        }
        return decision;
      })
      .finally(() => this.#claimingAgain.delete(id));
    this.#claimingAgain.set(id, claim);
    return claim;
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#stopped) return;
    this.#retryTimer = this.#options.clock.setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#retryUndecided();
    }, this.#retryDelay);
    // Retrying must not keep a process alive that has nothing else to do.
    (this.#retryTimer as { unref?: () => void } | undefined)?.unref?.();
  }

  async #retryUndecided(): Promise<void> {
    const now = this.#options.clock.now();
    const ids: string[] = [];
    // Past its TTL a rollback tag would be gone already: such an ID is given up.
    for (const [id, { until }] of this.#undecided) {
      if (until > now) ids.push(id);
      else this.#undecided.delete(id);
    }
    const answers = await Promise.allSettled(ids.map((id) => this.#claimAgain(id)));
    const failed = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected');
    this.#retryDelay = failed === undefined ? FIRST_RETRY_DELAY : Math.min(this.#retryDelay * 2, MAX_RETRY_DELAY);
    if (this.#undecided.size > 0) this.#scheduleRetry();
  }

  #publishTagged(exchange: Exchange<Req, Res>, ids: readonly string[]): void {
    if (!rollbackTaggedChannel.hasSubscribers) return;
    const { rollbackTag: tag, rollbackTtl: ttl } = this.#options;
    rollbackTaggedChannel.publish({ controller: this.#controller, exchange, correlationIds: ids, tag, ttl } satisfies RollbackMessage);
  }

  #bounded<T>(answer: PromiseLike<T>): Promise<T> {
    const { storeTimeout, clock } = this.#options;
    return withTimeout(answer, storeTimeout, `no answer within storeTimeout (${storeTimeout} ms)`, clock);
  }

  #reportUntag(error: unknown, id: string): void {
    this.reportStoreFailure(error instanceof TagStoreError ? error : new TagStoreError('untag', error), [id]);
  }

  /** Reports a failed store call that no caller awaits. */
  reportStoreFailure(error: TagStoreError, correlationIds: readonly string[]): void {
    if (tagStoreErrorChannel.hasSubscribers) {
      tagStoreErrorChannel.publish({ controller: this.#controller, error, correlationIds } satisfies TagStoreErrorMessage);
    } else {
      process.emitWarning(error);
    }
  }

  /**
   * Runs `onRollback` for an exchange whose IDs are claimed, after the
   * current operation, so a hook that re-enters the controller sees a
   * settled state.
   */
  runHook(result: ExchangeResult<Req, Res>): void {
    const hook = this.#options.onRollback;
    if (hook === undefined || result.unanswered.length === 0) return;
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

function noop(): void {}

/** `cleanings` of an end while no clean start is pending: every ID's is `undefined`. */
const NO_CLEANINGS: readonly undefined[] = [];
