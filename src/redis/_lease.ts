import { nanoid } from 'nanoid';
import type { Clock } from '../clock.js';
import { BackplaneError } from '../errors.js';
import { leaseLostChannel, type Failures, type RedisLeaseLostMessage } from './channels.js';
import type { Bounds, RedisConnection } from './_connection.js';
import type { BackplaneParts, Settings } from './_ownership.js';
import type { Scripts } from './_scripts.js';

/** What a {@link Lease} is made of. */
interface LeaseParts extends BackplaneParts {
  /** How long Redis keeps what it holds about IDs: each heartbeat trims what this instance wrote by it. */
  readonly settings: () => Settings;
  /** Ends every open exchange of the controller with `reason`. */
  readonly abandon: (reason: BackplaneError) => void;
  /** A renewal succeeded: Redis answers again. */
  readonly renewed?: () => void;
  /** A renewal found the lease gone (expired, or lost with a Redis that restarted empty), after fencing. */
  readonly lost?: () => void;
}

/**
 * This instance's lease, the key that tells the others it is alive,
 * renewed every third of `leaseTtl` by a heartbeat that also trims what it wrote about its IDs.
 *
 * Other instances roll back this instance's pending IDs once the lease has
 * lapsed; so this instance, once it cannot tell that its lease lives — no
 * renewal succeeded in time by its own clock, or a renewal found the lease
 * gone — must not deliver any more: it fences itself, ending every open
 * exchange, and stays fenced until a renewal succeeds.
 */
export class Lease {
  readonly #redis: RedisConnection;
  readonly #scripts: Scripts;
  readonly #instanceId: string;
  readonly #leaseKey: string;
  readonly #pendingKey: string;
  readonly #answeredKey: string;
  /** What this instance writes into its lease: a renewal that finds anything else learns it was lost. */
  readonly #token = nanoid();
  readonly #clock: Clock;
  readonly #leaseTtl: number;
  readonly #commands: Bounds;
  readonly #failures: Failures;
  readonly #settings: () => Settings;
  readonly #abandon: (reason: BackplaneError) => void;
  readonly #renewed: (() => void) | undefined;
  readonly #lost: (() => void) | undefined;
  #heartbeat: unknown;
  #fenceTimer: unknown;
  #held = false;
  /** Until when (this instance's clock) the lease surely lives in Redis; after it, this instance is fenced. */
  #until = 0;
  #fenced = false;
  /** Why it was fenced: the reason every exchange it ends while fenced gets. */
  #fenceReason: BackplaneError | undefined;
  #abandoning = false;
  #stopped = false;

  constructor(parts: LeaseParts) {
    const { options, keys } = parts;
    this.#redis = parts.redis;
    this.#scripts = parts.scripts;
    this.#instanceId = options.instanceId;
    this.#leaseKey = keys.lease(options.instanceId);
    this.#pendingKey = keys.pending(options.instanceId);
    this.#answeredKey = keys.answered(options.instanceId);
    this.#clock = options.clock;
    this.#leaseTtl = options.leaseTtl;
    this.#commands = parts.commands;
    this.#failures = parts.failures;
    this.#settings = parts.settings;
    this.#abandon = parts.abandon;
    this.#renewed = parts.renewed;
    this.#lost = parts.lost;
  }

  /**
   * Renews the lease and trims what this instance wrote about its IDs. The lease surely lives
   * until `leaseTtl` after the renewal was *sent*, so that is when the fence
   * is set. A renewal that finds the lease gone (expired, or lost with a
   * restarted Redis) means other instances may have rolled back our
   * pending IDs meanwhile: fence at once.
   *
   * @throws What Redis failed with, or a {@link BackplaneError} after `commandTimeout` (as a rejection).
   */
  async beat(): Promise<void> {
    const sentAt = this.#clock.now();
    const { pendingTtl, answeredKeep, bucketWidth, keep, rollbackTtl } = this.#settings();
    const found = await this.#commands.command(
      this.#scripts.beat(this.#leaseKey, this.#pendingKey, this.#answeredKey, this.#token, this.#leaseTtl, pendingTtl, answeredKeep, bucketWidth, keep, rollbackTtl),
      'heartbeat',
    );
    if (this.#stopped) return;
    if (this.#held && found !== this.#token) {
      this.#fence(`the lease of instance \`${this.#instanceId}\` lapsed (found ${found === null ? 'nothing' : 'another token'} when renewing it)`);
      if (leaseLostChannel.hasSubscribers) leaseLostChannel.publish({ instanceId: this.#instanceId, found } satisfies RedisLeaseLostMessage);
      this.#lost?.();
    }
    this.#held = true;
    this.#fenced = false;
    // A margin for clocks that drift apart over one lease.
    this.#until = sentAt + this.#leaseTtl - Math.ceil(this.#leaseTtl / 10);
    this.#clock.clearTimeout(this.#fenceTimer);
    this.#armFence(Math.max(1, this.#until - this.#clock.now()));
    this.#renewed?.();
  }

  /** Renews the lease every third of `leaseTtl` from now on, until {@link Lease.stop}. */
  keepRenewing(): void {
    if (this.#stopped) return;
    const timer = this.#clock.setTimeout(() => {
      void this.#renew().finally(() => this.keepRenewing());
    }, Math.max(1, Math.floor(this.#leaseTtl / 3)));
    // The heartbeat alone must not keep the process alive.
    (timer as { unref?: () => void } | undefined)?.unref?.();
    this.#heartbeat = timer;
  }

  /** Renews the lease now rather than at the next beat: Redis is back, and a restarted one has lost it. */
  renewNow(): void {
    if (this.#held && !this.#stopped) void this.#renew();
  }

  /**
   * Whether this instance may deliver a reply: not while fenced, nor once
   * its lease may have lapsed in Redis (other instances may then roll its
   * IDs back). Answering `false`, it first ends every open exchange of the
   * controller, so the reply is routed as a late one.
   */
  check(): boolean {
    if (this.#fenced) {
      // Ends an exchange registered since the fence whose end is still queued (see registering()).
      this.#abandon(this.#fenceReason!);
      return false;
    }
    if (!(this.#held && this.#clock.now() >= this.#until)) return true;
    this.#fence(this.#couldNotRenew());
    return false;
  }

  /** A request is being registered: while fenced, its exchange is ended right after the registration returns. */
  registering(): void {
    if (!this.#fenced || this.#abandoning) return;
    this.#abandoning = true;
    queueMicrotask(() => {
      this.#abandoning = false;
      if (this.#fenced) this.#abandon(this.#fenceReason!);
    });
  }

  /** Stops renewing and fencing. */
  stop(): void {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#heartbeat);
    this.#clock.clearTimeout(this.#fenceTimer);
  }

  /** Deletes the lease, if it was written: the others then know at once that this instance is gone. Never rejects. */
  async relinquish(): Promise<void> {
    if (this.#held) await this.#commands.quietly(() => this.#redis.del(this.#leaseKey));
  }

  /**
   * Fences this instance: ends every open exchange. The reason is made when
   * the fence goes up; while it stays up, exchanges are ended with it.
   */
  #fence(why: string): void {
    if (!this.#fenced) {
      this.#fenced = true;
      this.#fenceReason = new BackplaneError('transport', `lease lost: ${why}; its open exchanges were ended so that it never delivers a reply other instances rolled back`);
    }
    this.#abandon(this.#fenceReason!);
  }

  readonly #onFenceTimer = (): void => {
    if (this.#stopped || this.#fenced) return;
    const left = this.#until - this.#clock.now();
    // Timers may fire a little before the wall clock says: wait for the rest.
    if (left > 0) this.#armFence(left);
    else this.#fence(this.#couldNotRenew());
  };

  #armFence(ms: number): void {
    const timer = this.#clock.setTimeout(this.#onFenceTimer, ms);
    (timer as { unref?: () => void } | undefined)?.unref?.();
    this.#fenceTimer = timer;
  }

  #couldNotRenew(): string {
    return `instance \`${this.#instanceId}\` could not renew its lease within leaseTtl (${this.#leaseTtl} ms)`;
  }

  /** One heartbeat whose failure is reported, not thrown: the promise never rejects. */
  #renew(): Promise<void> {
    return this.beat().then(
      () => this.#failures.recovered(),
      (error: unknown) => this.#failures.report('heartbeat', [], error),
    );
  }
}
