import type { BackplaneRouter } from '../adapters.js';
import type { Clock } from '../clock.js';
import { BackplaneError } from '../errors.js';
import type { ResponseOutcome } from '../types.js';
import { conflictChannel, type Failures, type RedisConflictMessage } from './channels.js';
import { transportError, type Bounds, type RedisConnection } from './_connection.js';
import type { Keys } from './_keys.js';
import { clampTtl, isInstanceId, type ResolvedBackplaneOptions } from './options.js';
import { scriptRunner, type ScriptRunner, type Scripts } from './_scripts.js';

/**
 * The controller's settings as Redis gets them, and how long each kind of
 * key is kept for them: fixed when the backplane starts.
 */
export interface Settings {
  /** The controller's rollback tag; `undefined` until it started. */
  readonly rollbackTag: string | undefined;
  /** The rollback TTL as written to Redis. */
  readonly rollbackTtl: number;
  readonly duplicateWindow: number;
  /** How long the ownership of a chosen ID (and a pending entry) stays after its deadline: long enough to roll back a late reply. */
  readonly keep: number;
  /** TTL of the pending set: after its last write (a crash), its IDs are rolled back for `rollbackTtl`. */
  readonly pendingTtl: number;
}

/** What the parts of a backplane (its ownership, its lease) share. */
export interface BackplaneParts {
  readonly options: ResolvedBackplaneOptions;
  /** The command connection. */
  readonly redis: RedisConnection;
  readonly scripts: Scripts;
  readonly keys: Keys;
  readonly failures: Failures;
  /** Bounds by `commandTimeout`. */
  readonly commands: Bounds;
}

/** What an {@link Ownership} is made of. */
interface OwnershipParts extends BackplaneParts {
  /** Makes sure this turn ends with a write, which calls {@link Ownership.write}. */
  readonly schedule: () => void;
}

/**
 * What Redis holds about which instance owns which correlation ID, written
 * by the owner and read by the others:
 *
 * - an ID this instance generated names it (`<instanceId>~…`); its state is
 *   in this instance's pending and answered sets, written once per
 *   event-loop turn, one script call per {@link MAX_BATCH} IDs;
 * - an ID the application chose gets an ownership key, written by a script
 *   of its own that goes out in the turn's write;
 * - when the owner does not answer a forwarded reply, a script decides,
 *   atomically with what Redis holds: `rolled-back` once the owner is dead or
 *   the deadline and the grace have passed, else the owner may still deliver.
 *
 * Writes nobody awaits are tracked for `close()`; their failures are
 * reported (`rrxc:redis:error`), conflicts published (`rrxc:redis:conflict`).
 */
export class Ownership {
  readonly #redis: RedisConnection;
  readonly #scripts: Scripts;
  /** Runs the scripts of a turn's write. */
  readonly #runScript: ScriptRunner;
  readonly #keys: Keys;
  readonly #instanceId: string;
  /** `<instanceId>~`: the head of the IDs this instance generates. */
  readonly #idPrefix: string;
  readonly #pendingKey: string;
  readonly #answeredKey: string;
  readonly #options: ResolvedBackplaneOptions;
  readonly #clock: Clock;
  readonly #failures: Failures;
  readonly #commands: Bounds;
  readonly #schedule: () => void;
  #settings: Settings = NOT_STARTED;
  #batch: OwnBatch | undefined;
  /** Batches of this turn that reached {@link MAX_BATCH} IDs: a script call each. */
  #fullBatches: OwnBatch[] = [];
  /** Per-ID scripts of this turn (ownership of IDs the application chose), sent in the turn's write. */
  #queued: Queued[] = [];
  /** Number of background writes in flight, awaited (bounded) by `drained()`, which waits for `#written` to be called. */
  #writes = 0;
  #written: (() => void) | undefined;

  constructor(parts: OwnershipParts) {
    const { options, keys } = parts;
    this.#redis = parts.redis;
    this.#scripts = parts.scripts;
    this.#runScript = scriptRunner(parts.redis);
    this.#keys = keys;
    this.#instanceId = options.instanceId;
    this.#idPrefix = `${options.instanceId}~`;
    this.#pendingKey = keys.pending(options.instanceId);
    this.#answeredKey = keys.answered(options.instanceId);
    this.#options = options;
    this.#clock = options.clock;
    this.#failures = parts.failures;
    this.#commands = parts.commands;
    this.#schedule = parts.schedule;
  }

  /** The head of the IDs this instance generates: it names the instance. */
  get idPrefix(): string {
    return this.#idPrefix;
  }

  /** The controller's settings as written to Redis (the heartbeat trims the sets by them). */
  get settings(): Settings {
    return this.#settings;
  }

  /** Takes the controller's rollback tag, rollback TTL and duplicate window, which fix how long keys live. */
  start(router: BackplaneRouter): void {
    const { maxTtl, deadlineGrace, leaseTtl } = this.#options;
    const rollbackTtl = clampTtl(router.rollbackTtl, maxTtl);
    this.#settings = {
      rollbackTag: router.rollbackTag,
      rollbackTtl,
      duplicateWindow: Math.min(Math.ceil(router.duplicateWindow), maxTtl),
      keep: deadlineGrace + rollbackTtl,
      pendingTtl: Math.min(maxTtl, rollbackTtl + deadlineGrace + leaseTtl),
    };
  }

  /** A request was registered here: a generated ID joins this turn's batch; one the application chose gets its ownership key. */
  registered(correlationId: string, deadline: number | undefined): void {
    const remaining = deadline === undefined ? -1 : Math.max(0, Math.ceil(deadline - this.#clock.now()));
    if (correlationId.startsWith(this.#idPrefix)) {
      this.#own().registered.push(remaining, correlationId);
      return;
    }
    this.#background('register', [correlationId], () =>
      this.#queue('register', 'rrxcRegister1', [this.#keys.ownership(correlationId), this.#instanceId, remaining, this.#settings.keep, this.#options.maxTtl]),
    );
  }

  /**
   * An exchange ended: answered IDs are kept for the duplicate window; an
   * unanswered ID the application chose becomes a rollback tag in the same
   * atomic step as its ownership goes.
   */
  ended(answered: readonly string[], unanswered: readonly string[]): void {
    for (const id of answered) {
      if (id.startsWith(this.#idPrefix)) this.#own().answered.push(id);
      else this.#disown(id, '1');
    }
    for (const id of unanswered) {
      if (id.startsWith(this.#idPrefix)) this.#own().unanswered.push(id);
      else this.#disown(id, '0');
    }
  }

  /** Sends this turn's batches and per-ID scripts: called within the turn's write. */
  write(): void {
    const batches = this.#fullBatches;
    if (this.#batch !== undefined) batches.push(this.#batch);
    this.#batch = undefined;
    this.#fullBatches = [];
    const queued = this.#queued;
    this.#queued = [];
    for (const batch of batches) this.#writeOwn(batch);
    for (const { operation, name, args, resolve, reject } of queued) this.#commands.command(this.#runScript(name, args) as Promise<number>, operation).then(resolve, reject);
  }

  /** Resolves once the background writes in flight have settled, or after `commandTimeout`. */
  async drained(): Promise<void> {
    if (this.#writes === 0) return;
    const written = new Promise<void>((resolve) => (this.#written = resolve));
    await this.#commands.quietly(() => written);
  }

  /** Whether `instanceId` holds its lease: it is alive. */
  async alive(instanceId: string): Promise<boolean> {
    return (await this.#command('EXISTS', () => this.#redis.exists(this.#keys.lease(instanceId)))) !== 0;
  }

  /** Who owns `id`, an ID the application chose, as Redis says; `undefined` when nobody does. */
  async lookup(id: string): Promise<Owner | undefined> {
    return parseOwnership(await this.#command('GET', () => this.#redis.get(this.#keys.ownership(id))));
  }

  /**
   * A generated ID whose owner did not answer: its pending and answered sets
   * decide, atomically with its lease; `undefined` when neither holds the ID.
   *
   * @throws {@link BackplaneError} (as a rejection) when the owner may still deliver, or Redis fails.
   */
  async settleOwned(owner: string, id: string): Promise<ResponseOutcome | undefined> {
    const { duplicateWindow, rollbackTag, rollbackTtl } = this.#settings;
    const outcome = await this.#command('settle', () =>
      this.#scripts.settleOwned(
        this.#keys.lease(owner),
        this.#keys.pending(owner),
        this.#keys.answered(owner),
        id,
        this.#options.deadlineGrace,
        duplicateWindow,
        owner === this.#instanceId ? '1' : '0',
      ),
    );
    if (outcome === 'none') return undefined;
    if (outcome === 'pending') throw unreachable(owner, id, this.#options.forwardTimeout);
    if (outcome === 'rolled-back' && rollbackTag !== undefined) {
      // The decision is already in the owner's set; the tag is for isRolledBack() and later copies.
      await this.#command('tag', () => this.#scripts.tag(this.#keys.tags(id), rollbackTag, rollbackTtl));
    }
    return outcome as ResponseOutcome;
  }

  /**
   * An ID whose owner (`held`, as {@link Ownership.lookup} found it) did not
   * answer: its ownership and its tags in Redis decide, atomically.
   *
   * @throws {@link BackplaneError} (as a rejection) when the owner may still deliver, or Redis fails.
   */
  async settle(id: string, held: Owner | undefined): Promise<ResponseOutcome> {
    let owner = '';
    let alive: '1' | '0' = '1';
    if (held?.pending === true) {
      owner = held.instanceId;
      // Our own ownership of an ID our controller no longer holds: nobody will deliver it.
      if (owner === this.#instanceId || !(await this.alive(owner))) alive = '0';
    }
    const { rollbackTag, rollbackTtl } = this.#settings;
    const outcome = await this.#command('settle', () =>
      this.#scripts.settle(this.#keys.ownership(id), this.#keys.tags(id), owner, alive, this.#options.deadlineGrace, rollbackTag ?? '', rollbackTtl),
    );
    if (outcome === 'pending') throw unreachable(owner, id, this.#options.forwardTimeout);
    return outcome as ResponseOutcome;
  }

  /** This turn's batch for the generated IDs, written in one script call (per {@link MAX_BATCH} IDs) when the turn ends. */
  #own(): OwnBatch {
    let batch = this.#batch;
    if (batch !== undefined && batch.registered.length / 2 + batch.answered.length + batch.unanswered.length >= MAX_BATCH) {
      this.#fullBatches.push(batch);
      batch = undefined;
    }
    if (batch === undefined) {
      batch = this.#batch = { registered: [], answered: [], unanswered: [] };
      this.#schedule();
    }
    return batch;
  }

  /** Queues a per-ID script for this turn's write; resolves with its result. */
  #queue(operation: string, name: Queued['name'], args: (string | number)[]): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#queued.push({ operation, name, args, resolve, reject });
      this.#schedule();
    });
  }

  /** Writes a batch for the generated IDs; conflicts go to `rrxc:redis:conflict`, failures to `rrxc:redis:error`. */
  #writeOwn(batch: OwnBatch): void {
    const { registered, answered, unanswered } = batch;
    const { pendingTtl, duplicateWindow } = this.#settings;
    const args: (string | number)[] = [this.#pendingKey, this.#answeredKey, pendingTtl, duplicateWindow, this.#options.maxTtl, registered.length / 2];
    for (const item of registered) args.push(item);
    args.push(answered.length);
    for (const id of answered) args.push(id);
    args.push(unanswered.length);
    for (const id of unanswered) args.push(id);
    const ids = (): string[] => [...registered.filter((_, i) => i % 2 === 1).map(String), ...answered, ...unanswered];
    this.#background('own', ids, async () => {
      const conflicts = (await this.#commands.command(this.#runScript('rrxcOwn1', args), 'own')) as string[];
      if (conflictChannel.hasSubscribers) {
        for (const correlationId of conflicts) conflictChannel.publish({ instanceId: this.#instanceId, correlationId } satisfies RedisConflictMessage);
      }
    });
  }

  /** Gives up the ownership of an ID the application chose (answered: kept for the duplicate window; not: tagged for rollback). */
  #disown(id: string, answered: '1' | '0'): void {
    const { rollbackTag, duplicateWindow, rollbackTtl } = this.#settings;
    this.#background('end', [id], async () => {
      const result = await this.#queue('end', 'rrxcDisown1', [this.#keys.ownership(id), this.#keys.tags(id), this.#instanceId, answered, duplicateWindow, rollbackTag ?? '', rollbackTtl]);
      if (result === 2 && conflictChannel.hasSubscribers) {
        conflictChannel.publish({ instanceId: this.#instanceId, correlationId: id } satisfies RedisConflictMessage);
      }
    });
  }

  /** A write nobody awaits: tracked for `drained()`, failures reported. Never throws. */
  #background(operation: string, ids: readonly string[] | (() => readonly string[]), write: () => Promise<unknown>): void {
    let written: Promise<unknown>;
    try {
      written = write();
    } catch (error) {
      written = Promise.reject(error);
    }
    const tracked = written.then(
      () => this.#failures.recovered(),
      (error: unknown) => this.#failures.report(operation, typeof ids === 'function' ? ids() : ids, error),
    );
    this.#writes++;
    void tracked.finally(() => {
      if (--this.#writes === 0) this.#written?.();
    });
  }

  /** One Redis command on the forwarding path: bounded, failures as {@link BackplaneError}. */
  async #command<T>(name: string, call: () => Promise<T>): Promise<T> {
    try {
      return await this.#commands.command(call(), name);
    } catch (error) {
      throw transportError(name, error);
    }
  }
}

/** Who owns an ID, as its ownership key says. */
interface Owner {
  readonly instanceId: string;
  /** Pending at its owner; else answered there (within the duplicate window). */
  readonly pending: boolean;
}

/** The instance named at the head of an ID this backplane (on any instance) generated. */
export function ownerOf(id: string): string | undefined {
  const end = id.indexOf('~');
  if (end <= 0 || end > 64) return undefined;
  const owner = id.slice(0, end);
  return isInstanceId(owner) ? owner : undefined;
}

/** The value of an ownership key: `p|<instance>|<deadline>` (pending) or `a|<instance>` (answered). */
function parseOwnership(raw: string | null): Owner | undefined {
  if (raw === null) return undefined;
  const end = raw.indexOf('|', 2);
  const state = raw[0];
  if (state !== 'p' && state !== 'a') return undefined;
  return { instanceId: end === -1 ? raw.slice(2) : raw.slice(2, end), pending: state === 'p' };
}

function unreachable(owner: string, id: string, forwardTimeout: number): BackplaneError {
  return new BackplaneError(
    'owner-unreachable',
    `instance \`${owner}\` owns \`${id}\` but did not answer within forwardTimeout (${forwardTimeout} ms); it is alive and the request's deadline has not passed, so the reply may still be delivered there`,
  );
}

/** Before the controller started: no rollback tag, nothing kept. */
const NOT_STARTED: Settings = { rollbackTag: undefined, rollbackTtl: 0, duplicateWindow: 0, keep: 0, pendingTtl: 0 };

/** Most IDs in one call of the pending-set script: a longer call would hold Redis up (and overflow argument spreads). */
const MAX_BATCH = 1_000;

/** One event-loop turn of writes about this instance's generated IDs. */
interface OwnBatch {
  /** ms to the deadline (-1: none), ID; pairs, flattened. */
  readonly registered: (string | number)[];
  readonly answered: string[];
  readonly unanswered: string[];
}

/** A per-ID script waiting for the turn's write, and the promise it settles. */
interface Queued {
  /** What it is reported as, should it fail. */
  readonly operation: string;
  readonly name: 'rrxcRegister1' | 'rrxcDisown1';
  readonly args: (string | number)[];
  readonly resolve: (result: number) => void;
  readonly reject: (error: unknown) => void;
}
