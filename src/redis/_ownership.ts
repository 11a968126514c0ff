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
  /** The controller's committed tag: a rollback written here is a claim against it. */
  readonly committedTag: string;
  /** How long the record of an answered ID is kept: the duplicate window, or as long as the forwarder of a delivered reply may still ask, whichever is longer. */
  readonly answeredKeep: number;
  /** The span of server time of one answered bucket of the generated IDs: a sixteenth of `answeredKeep`. */
  readonly bucketWidth: number;
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
 *   in this instance's pending set and answered buckets, written in batches
 *   (a turn's events; a registration waits for the next write, at most
 *   {@link REGISTRATION_DELAY} ms), one script call per {@link MAX_BATCH} IDs;
 * - an ID the application chose gets an ownership key, written by a script
 *   of its own that goes out in the turn's write;
 * - a forwarded reply is held in its exchange while a script records it as
 *   answered, with the forward that brought it, and publishes its
 *   acknowledgement (the turn's batch for a generated ID, a script of its
 *   own for a chosen one); only then is it handed over. No delivery is
 *   unknown to Redis, and no forwarder learns of one Redis does not hold;
 * - when the owner does not answer a forwarded reply, a script decides,
 *   atomically with what Redis holds: `rolled-back` once the owner is dead,
 *   else unknown — the owner may still deliver, or may have. No deadline
 *   rolls back a live owner's ID.
 *
 * Writes nobody awaits are tracked for `close()`; their failures are
 * reported (`rrxc:redis:error`), conflicts published (`rrxc:redis:conflict`).
 * A write that failed is kept and sent again, in order — every write after
 * it waits behind it — until Redis takes it; meanwhile this instance
 * delivers nothing ({@link Ownership.canRecord}), since it could not record
 * the delivery.
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
  readonly #layoutKey: string;
  /** `<prefix>in:`: the head of every instance's channel name. */
  readonly #channelHead: string;
  readonly #options: ResolvedBackplaneOptions;
  readonly #clock: Clock;
  readonly #failures: Failures;
  readonly #commands: Bounds;
  readonly #schedule: () => void;
  #settings: Settings = NOT_STARTED;
  #batch: OwnBatch | undefined;
  /** Batches waiting for the next write that reached {@link MAX_BATCH} IDs: a script call each. */
  #fullBatches: OwnBatch[] = [];
  /** Per-ID scripts of this turn (ownership of IDs the application chose), sent in the turn's write. */
  #queued: Write[] = [];
  /** Writes that failed, and every write made after them, in order: sent again by {@link Ownership.retryNow}. */
  #failed: Write[] = [];
  /** Writes sent again and not settled yet. */
  #retrying = 0;
  /** Writes of the round being sent again that failed again. */
  #roundFailed: Write[] = [];
  /** Numbers the writes in the order they were made. */
  #order = 0;
  /** Whether the next turn's write sends {@link Ownership.#failed} again. */
  #retryDue = false;
  #retryTimer: unknown;
  /** Set while a registration may wait in the batch for the next write. */
  #registrationTimer: unknown;
  #stopped = false;
  /**
   * The IDs the application chose that were answered here lately (→ their
   * record's deliverer, or ''), in two generations of `duplicateWindow`
   * each: a Redis that restarted empty lost their `a|…` records, the only
   * ones naming this instance, and {@link Ownership.restore} writes them again.
   */
  #answeredChosen = new Map<string, string>();
  #answeredBefore = new Map<string, string>();
  #answeredSince = 0;
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
    this.#layoutKey = keys.answeredLayout(options.instanceId);
    this.#channelHead = keys.channel('');
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

  /** The controller's settings as written to Redis (the heartbeat trims the pending set and drops aged answered hashes by them). */
  get settings(): Settings {
    return this.#settings;
  }

  /** Takes the controller's rollback tag, rollback TTL and duplicate window, which fix how long keys live. */
  start(router: BackplaneRouter): void {
    const { maxTtl, deadlineGrace, leaseTtl, forwardTimeout, retryInterval, commandTimeout } = this.#options;
    const rollbackTtl = clampTtl(router.rollbackTtl, maxTtl);
    const duplicateWindow = Math.min(Math.ceil(router.duplicateWindow), maxTtl);
    // As long as a forwarder may still ask: its resends, then its settling (see "Bounded answers").
    const answeredKeep = Math.min(maxTtl, Math.max(duplicateWindow, 2 * (forwardTimeout + retryInterval) + 5 * commandTimeout));
    this.#settings = {
      rollbackTag: router.rollbackTag,
      rollbackTtl,
      duplicateWindow,
      keep: deadlineGrace + rollbackTtl,
      pendingTtl: Math.min(maxTtl, rollbackTtl + deadlineGrace + leaseTtl),
      committedTag: router.committedTag,
      answeredKeep,
      bucketWidth: Math.ceil(answeredKeep / 16),
    };
  }

  /**
   * Whether this instance can record a delivery now: its command connection
   * is ready and no earlier write is waiting to be sent again. While it
   * cannot, it delivers nothing — a delivery Redis does not hold would be
   * rolled back by another instance, should this one crash.
   */
  canRecord(): boolean {
    return this.#failed.length === 0 && this.#retrying === 0 && this.#redis.status === 'ready';
  }

  /**
   * A request was registered here: a generated ID joins the batch, written
   * with the next write this instance makes, at most
   * {@link REGISTRATION_DELAY} ms later (its reply, forwarded here, is
   * usually what makes that write, so the two take one script call); one
   * the application chose gets its ownership key in this turn's write.
   */
  registered(correlationId: string, deadline: number | undefined): void {
    const remaining = deadline === undefined ? -1 : Math.max(0, Math.ceil(deadline - this.#clock.now()));
    if (correlationId.startsWith(this.#idPrefix)) {
      const batch = this.#own();
      if (batch.registered.length === 0) {
        batch.registeredAt = this.#clock.now();
        this.#registeredSoon(REGISTRATION_DELAY);
      }
      batch.remaining.push(remaining);
      batch.registered.push(correlationId);
      return;
    }
    this.#queue('register', correlationId, 'rrxcRegister1', [this.#keys.ownership(correlationId), this.#instanceId, remaining, this.#settings.keep, this.#options.maxTtl]);
  }

  /**
   * A reply that instance `from` forwarded as its number `seq` is held in
   * its exchange: a script records it as answered by that forward and
   * publishes its acknowledgement ("delivered") on `from`'s channel, in one
   * step — this turn's batch for a generated ID, a script of its own for
   * one the application chose. Resolves `true` once recorded (hand it over
   * now), or `false` when another instance had already rolled the ID back
   * (not delivered; nothing was published). A write that failed is sent
   * again (see {@link Ownership.retryNow}) and this waits for it; rejects
   * only when it is given up.
   */
  recordDelivery(correlationId: string, from: string, seq: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (correlationId.startsWith(this.#idPrefix)) {
        const batch = this.#own();
        let forwards = batch.held.get(from);
        if (forwards === undefined) batch.held.set(from, (forwards = { items: [], holds: [] }));
        forwards.items.push(correlationId, seq);
        forwards.holds.push({ resolve, reject });
        batch.heldCount++;
        this.#schedule();
        return;
      }
      const { rollbackTag, answeredKeep } = this.#settings;
      this.#queued.push({
        operation: 'deliver',
        ids: () => [correlationId],
        run: () =>
          this.#runScript('rrxcDeliver3', [this.#keys.ownership(correlationId), this.#keys.tags(correlationId), this.#instanceId, from, seq, rollbackTag ?? '', this.#channelHead, answeredKeep]),
        then: (result) => {
          if (result === 2) return resolve(false);
          this.#rememberAnswered(correlationId, `${from} ${seq}`);
          resolve(true);
        },
        lost: reject,
      });
      this.#schedule();
    });
  }

  /**
   * An exchange ended: answered IDs are kept for the duplicate window; an
   * unanswered ID the application chose becomes a rollback tag in the same
   * atomic step as its ownership goes.
   */
  ended(answered: readonly string[], unanswered: readonly string[]): void {
    let own = false;
    for (const id of answered) {
      if (id.startsWith(this.#idPrefix)) {
        this.#own().answered.push(id);
        own = true;
      } else {
        this.#rememberAnswered(id, '');
        this.#disown(id, '1');
      }
    }
    for (const id of unanswered) {
      if (id.startsWith(this.#idPrefix)) {
        this.#own().unanswered.push(id);
        own = true;
      } else this.#disown(id, '0');
    }
    if (own) this.#schedule();
  }

  /**
   * Sends this turn's batches and per-ID scripts: called within the turn's
   * write. While earlier writes wait to be sent again, this turn's queue up
   * behind them, so that Redis applies every write in the order it was made.
   */
  write(): void {
    const batches = this.#fullBatches;
    if (this.#batch !== undefined) batches.push(this.#batch);
    this.#batch = undefined;
    this.#fullBatches = [];
    const queued = this.#queued;
    this.#queued = [];
    if (this.#failed.length === 0 && this.#retrying === 0) {
      for (const batch of batches) this.#send(this.#ownWrite(batch));
      for (const write of queued) this.#send(write);
      return;
    }
    for (const batch of batches) this.#keep(this.#ownWrite(batch));
    for (const write of queued) this.#keep(write);
    if (this.#retryDue && this.#retrying === 0) {
      this.#retryDue = false;
      const again = this.#failed;
      this.#failed = [];
      for (const write of again) {
        this.#retrying++;
        this.#send(write, true);
      }
    }
  }

  /**
   * Sends the writes that failed again with the next turn's write, if the
   * connection is ready: called when it is ready again, after each
   * heartbeat, and `retryInterval` after a failure.
   */
  retryNow(): void {
    if (this.#stopped || this.#failed.length === 0 || this.#retrying > 0 || this.#redis.status !== 'ready') return;
    this.#retryDue = true;
    this.#schedule();
  }

  /** No more retries by timer (closing): what still fails is reported, and lost. */
  stop(): void {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#retryTimer);
    this.#clock.clearTimeout(this.#registrationTimer);
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
   * Whether this instance delivered `id` as forward `seq` of `from`, as
   * Redis recorded it: asked when the controller answers such a forward
   * `duplicate` and the answer to it is no longer in memory. Never rejects.
   */
  async deliveredBy(id: string, from: string, seq: number): Promise<boolean> {
    try {
      if (id.startsWith(this.#idPrefix)) return (await this.#settleOwned(this.#instanceId, id, `${from} ${seq}`)) === 'delivered';
      return (await this.#command('GET', () => this.#redis.get(this.#keys.ownership(id)))) === `a|${this.#instanceId}|${from} ${seq}`;
    } catch {
      return false;
    }
  }

  /**
   * A generated ID whose owner did not answer: its pending set and answered
   * records decide, atomically with its lease; `undefined` when neither holds the ID.
   * `seq`: the number of this instance's forward of it, if it made one — a
   * forward the owner recorded as delivered is `delivered`; {@link Unknown}
   * when the owner may still deliver (or may have).
   *
   * @throws {@link BackplaneError} (as a rejection) when Redis fails.
   */
  async settleOwned(owner: string, id: string, seq: number | undefined): Promise<ResponseOutcome | Unknown | undefined> {
    const outcome = await this.#settleOwned(owner, id, seq === undefined ? '' : `${this.#instanceId} ${seq}`);
    if (outcome === 'none') return undefined;
    if (outcome === 'pending') return { owner };
    // The owner's set holds the decision "not delivered"; the tag says whether that is a rollback, or a commit a worker claimed first.
    if (outcome === 'rolled-back') return this.claimRollback(id);
    return outcome as ResponseOutcome;
  }

  /** The settling script on a generated ID of `owner`'s, for the forward `deliverer` (`<from> <seq>`, or ''). */
  #settleOwned(owner: string, id: string, deliverer: string): Promise<string> {
    const { duplicateWindow, rollbackTtl } = this.#settings;
    const keys = this.#keys;
    return this.#command('settle', () =>
      this.#scripts.settleOwned(keys.lease(owner), keys.pending(owner), keys.answered(owner), keys.answeredLayout(owner), id, duplicateWindow, owner === this.#instanceId ? '1' : '0', deliverer, rollbackTtl),
    );
  }

  /**
   * Claims the rollback tag on `id` against the committed tag: `committed`
   * when a worker holds the committed tag, else `rolled-back` (tagged now,
   * or already).
   *
   * @throws {@link BackplaneError} (as a rejection) when Redis fails.
   */
  async claimRollback(id: string): Promise<ResponseOutcome> {
    const { rollbackTag, rollbackTtl, committedTag } = this.#settings;
    if (rollbackTag === undefined) return 'rolled-back';
    const held = await this.#command('claim', () => this.#scripts.claim(this.#keys.tags(id), rollbackTag, rollbackTtl, [committedTag]));
    return held === committedTag ? 'committed' : 'rolled-back';
  }

  /**
   * An ID whose owner (`held`, as {@link Ownership.lookup} found it) did not
   * answer: its ownership and its tags in Redis decide, atomically. `seq`:
   * the number of this instance's forward of it, if it made one.
   * {@link Unknown} when the owner may still deliver (or may have).
   *
   * @throws {@link BackplaneError} (as a rejection) when Redis fails.
   */
  async settle(id: string, held: Owner | undefined, seq: number | undefined): Promise<ResponseOutcome | Unknown> {
    let owner = '';
    let alive: '1' | '0' = '1';
    let self: '1' | '0' = '0';
    if (held?.pending === true) {
      owner = held.instanceId;
      // Our own ownership of an ID our controller no longer holds: nobody will deliver it.
      if (owner === this.#instanceId) self = '1';
      if (owner === this.#instanceId || !(await this.alive(owner))) alive = '0';
    }
    const { rollbackTag, rollbackTtl, committedTag } = this.#settings;
    const deliverer = seq === undefined ? '' : `${this.#instanceId} ${seq}`;
    const outcome = await this.#command('settle', () =>
      this.#scripts.settle(this.#keys.ownership(id), this.#keys.tags(id), owner, alive, self, rollbackTag ?? '', rollbackTtl, committedTag, deliverer),
    );
    if (outcome === 'pending') return { owner };
    return outcome as ResponseOutcome;
  }

  /**
   * After a Redis that restarted empty (this instance found its lease gone):
   * writes again the records of the IDs the application chose that were
   * answered here within the duplicate window, so that a late copy reaching
   * another instance still finds this one (and is `duplicate`), not
   * `unmatched`. A record still there is left as it is.
   */
  restore(): void {
    const { duplicateWindow } = this.#settings;
    if (duplicateWindow <= 0) return;
    this.#rotateAnswered();
    for (const answered of [this.#answeredBefore, this.#answeredChosen]) {
      for (const [id, deliverer] of answered) {
        const key = this.#keys.ownership(id);
        const value = `a|${this.#instanceId}${deliverer === '' ? '' : `|${deliverer}`}`;
        this.#queued.push({ operation: 'restore', ids: () => [id], run: () => this.#redis.set(key, value, 'PX', duplicateWindow, 'NX') });
      }
    }
    this.#schedule();
  }

  #rememberAnswered(id: string, deliverer: string): void {
    if (this.#settings.duplicateWindow <= 0) return;
    this.#rotateAnswered();
    if (deliverer === '' && this.#answeredChosen.has(id)) return;
    this.#answeredChosen.set(id, deliverer);
  }

  #rotateAnswered(): void {
    const now = this.#clock.now();
    if (now - this.#answeredSince < this.#settings.duplicateWindow) return;
    // Two generations at once when the last write is older than a whole window.
    this.#answeredBefore = now - this.#answeredSince < 2 * this.#settings.duplicateWindow ? this.#answeredChosen : new Map();
    this.#answeredChosen = new Map();
    this.#answeredSince = now;
  }

  /** The batch for the generated IDs, written in one script call (per {@link MAX_BATCH} IDs) with the next write: the caller makes sure there is one. */
  #own(): OwnBatch {
    let batch = this.#batch;
    if (batch !== undefined && batch.registered.length + batch.heldCount + batch.answered.length + batch.unanswered.length >= MAX_BATCH) {
      this.#fullBatches.push(batch);
      this.#schedule();
      batch = undefined;
    }
    return (this.#batch = batch ?? { remaining: [], registered: [], registeredAt: 0, held: new Map(), heldCount: 0, answered: [], unanswered: [] });
  }

  /**
   * Makes sure the batch's registrations go out {@link REGISTRATION_DELAY}
   * ms after the first of them at the latest, should no other write take
   * them before. The timer is not cleared by a write but runs out, and then
   * waits for the registrations of the batch after (or makes the write, if
   * they are due): at most one timer per {@link REGISTRATION_DELAY} ms,
   * however many requests.
   */
  #registeredSoon(ms: number): void {
    if (this.#registrationTimer !== undefined) return;
    const timer = this.#clock.setTimeout(() => {
      this.#registrationTimer = undefined;
      const batch = this.#batch;
      if (batch === undefined || batch.registered.length === 0) return;
      const due = batch.registeredAt + REGISTRATION_DELAY - this.#clock.now();
      if (due > 0) this.#registeredSoon(due);
      else this.#schedule();
    }, ms);
    (timer as { unref?: () => void } | undefined)?.unref?.();
    this.#registrationTimer = timer;
  }

  /** Queues a per-ID script for this turn's write; `then` gets its result. */
  #queue(operation: string, id: string, name: ScriptName, args: (string | number)[], then?: (result: unknown) => unknown): void {
    this.#queued.push({ operation, ids: () => [id], run: () => this.#runScript(name, args), then });
    this.#schedule();
  }

  /** The write of a batch for the generated IDs; conflicts go to `rrxc:redis:conflict`. */
  #ownWrite(batch: OwnBatch): Write {
    const { remaining, registered, held, answered, unanswered } = batch;
    const { pendingTtl, duplicateWindow, answeredKeep, bucketWidth, rollbackTtl } = this.#settings;
    const args: (string | number)[] = [this.#pendingKey, this.#answeredKey, this.#layoutKey, pendingTtl, duplicateWindow, this.#options.maxTtl, answeredKeep, bucketWidth, rollbackTtl, this.#channelHead];
    args.push(registered.length, remaining.join(' '), ...registered, held.size);
    const holds: Hold[] = [];
    for (const [from, forwards] of held) {
      args.push(from, forwards.holds.length, ...forwards.items);
      holds.push(...forwards.holds);
    }
    args.push(answered.length, ...answered, unanswered.length, ...unanswered);
    return {
      operation: 'own',
      ids: () => [...registered, ...[...held.values()].flatMap(({ items }) => items.filter((_, i) => i % 2 === 0).map(String)), ...answered, ...unanswered],
      run: () => this.#runScript('rrxcOwn5', args),
      then: (result, again) => {
        const [conflicts, refused] = result as [string[], number[]];
        if (holds.length > 0) {
          const recorded = holds.map(() => true);
          for (const k of refused) recorded[k - 1] = false;
          holds.forEach((hold, k) => hold.resolve(recorded[k]!));
        }
        if (conflictChannel.hasSubscribers) for (const correlationId of conflicts) this.#conflict(correlationId);
        // Sent again after a failure: the controller's own rollback tags for these IDs most likely failed with it.
        if (again) for (const id of unanswered) this.#send({ operation: 'tag', ids: () => [id], run: () => this.claimRollback(id) });
      },
      lost: holds.length === 0 ? undefined : (error) => holds.forEach((hold) => hold.reject(error)),
    };
  }

  /** Gives up the ownership of an ID the application chose (answered: kept for the duplicate window; not: claimed for rollback). */
  #disown(id: string, answered: '1' | '0'): void {
    const { rollbackTag, duplicateWindow, rollbackTtl, committedTag } = this.#settings;
    this.#queue(
      'end',
      id,
      'rrxcDisown3',
      [this.#keys.ownership(id), this.#keys.tags(id), this.#instanceId, answered, duplicateWindow, rollbackTag ?? '', rollbackTtl, committedTag],
      (result) => result === 2 && this.#conflict(id),
    );
  }

  #conflict(correlationId: string): void {
    if (conflictChannel.hasSubscribers) conflictChannel.publish({ instanceId: this.#instanceId, correlationId } satisfies RedisConflictMessage);
  }

  /**
   * Sends a write nobody awaits: tracked for `drained()`; a failure is
   * reported and the write kept, to be sent again. Never throws.
   */
  #send(write: Write, again = false): void {
    write.order ??= ++this.#order;
    let written: Promise<unknown>;
    try {
      written = this.#commands.command(write.run() as Promise<unknown>, write.operation);
    } catch (error) {
      written = Promise.reject(error);
    }
    this.#writes++;
    void written
      .then(
        (result) => {
          this.#failures.recovered();
          write.then?.(result, again);
        },
        (error: unknown) => {
          this.#failures.report(write.operation, write.ids(), error);
          if (again) this.#roundFailed.push(write);
          else this.#keep(write);
        },
      )
      .finally(() => {
        if (again && --this.#retrying === 0) this.#roundEnded();
        if (--this.#writes === 0) this.#written?.();
      });
  }

  /** A round of writes sent again has settled: those that failed again go back first, in the order they were made. */
  #roundEnded(): void {
    const failed = this.#roundFailed;
    this.#roundFailed = [];
    if (failed.length > 0) {
      failed.sort((a, b) => a.order! - b.order!);
      const later = this.#failed;
      this.#failed = [];
      for (const write of failed) this.#keep(write);
      for (const write of later) this.#failed.push(write);
    } else if (this.#failed.length > 0) this.retryNow();
  }

  /** Keeps a failed write to be sent again, at most {@link MAX_FAILED} of them (the oldest go first, reported). */
  #keep(write: Write): void {
    if (this.#stopped) {
      write.lost?.(new Error('the Redis backplane closed before the write could be sent again'));
      return;
    }
    write.order ??= ++this.#order;
    this.#failed.push(write);
    if (this.#failed.length > MAX_FAILED) {
      const lost = this.#failed.shift()!;
      const error = new Error('too many writes waiting for Redis');
      this.#failures.report(`${lost.operation} (given up: ${MAX_FAILED} writes waiting)`, lost.ids(), error);
      lost.lost?.(error);
    }
    this.#retryLater(this.#options.retryInterval);
  }

  #retryLater(ms: number): void {
    if (this.#stopped || this.#retryTimer !== undefined) return;
    const timer = this.#clock.setTimeout(() => {
      this.#retryTimer = undefined;
      this.retryNow();
      // Not ready yet: its 'ready' event, or the next try, sends them.
      if (this.#failed.length > 0 && !this.#retryDue && this.#retrying === 0) this.#retryLater(this.#options.retryInterval);
    }, ms);
    (timer as { unref?: () => void } | undefined)?.unref?.();
    this.#retryTimer = timer;
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
  return { instanceId: end === -1 ? raw.slice(2) : raw.slice(2, end), pending: state !== 'a' };
}

/** A settling that could not decide: `owner` may still deliver, or may have. */
export interface Unknown {
  readonly owner: string;
}

/** What a forward whose settling stayed {@link Unknown} rejects with. */
export function unreachable(owner: string, id: string, forwardTimeout: number): BackplaneError {
  return new BackplaneError(
    'owner-unreachable',
    `instance \`${owner}\` owns \`${id}\` but did not answer within forwardTimeout (${forwardTimeout} ms); it is alive and the request's deadline has not passed, so the reply may still be delivered there`,
  );
}

/** Before the controller started: no rollback tag, nothing kept. */
const NOT_STARTED: Settings = { rollbackTag: undefined, rollbackTtl: 0, duplicateWindow: 0, keep: 0, pendingTtl: 0, committedTag: 'committed', answeredKeep: 0, bucketWidth: 1 };

/** Most failed writes kept to be sent again; beyond, the oldest is given up (and reported). */
const MAX_FAILED = 10_000;

/**
 * Most milliseconds a generated ID's registration waits for a write to go
 * out with: an owner killed within it leaves no pending entry, and a late
 * reply to the ID elsewhere is `unmatched` rather than `rolled-back` — as
 * for one killed before its turn's write reached Redis.
 */
const REGISTRATION_DELAY = 5;

/** Most IDs in one call of the pending-set script: a longer call would hold Redis up (and overflow argument spreads). */
const MAX_BATCH = 1_000;

/** The writes about this instance's generated IDs that go out in one script call (the next write, at most {@link REGISTRATION_DELAY} after a registration). */
interface OwnBatch {
  /** ms to the deadline of each registered ID (-1: none), in the order of `registered`. */
  readonly remaining: number[];
  readonly registered: string[];
  /** When the first of `registered` was registered (the clock's ms). */
  registeredAt: number;
  /** Forwarded replies held in their exchange until recorded, by the instance that forwarded them. */
  readonly held: Map<string, HeldForwards>;
  /** How many forwarded replies `held` holds in all. */
  heldCount: number;
  readonly answered: string[];
  readonly unanswered: string[];
}

/** The forwards of one instance held in a batch. */
interface HeldForwards {
  /** ID, forward number; flattened. */
  readonly items: (string | number)[];
  /** Who waits for each of those records, in the same order. */
  readonly holds: Hold[];
}

/** Who waits for the record of a held forward: `true` recorded, `false` refused. */
interface Hold {
  readonly resolve: (recorded: boolean) => void;
  readonly reject: (error: unknown) => void;
}

/** A background write: sent in a turn's write, and again, in order, should it fail. */
interface Write {
  /** What it is reported as, should it fail. */
  readonly operation: string;
  /** The correlation IDs concerned, for the report. */
  readonly ids: () => readonly string[];
  readonly run: () => Promise<unknown>;
  /** What to do with its result; `again`: it was sent again after a failure. */
  readonly then?: ((result: unknown, again: boolean) => unknown) | undefined;
  /** Called when it is given up (too many waiting, or closing): whoever waits for its result learns it will not come. */
  readonly lost?: ((error: unknown) => void) | undefined;
  /** Its place in the order writes were made. */
  order?: number;
}

/** Name of one of the scripts a turn's write runs. */
type ScriptName = Parameters<ScriptRunner>[0];
