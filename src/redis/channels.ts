import { channel } from 'node:diagnostics_channel';
import { BackplaneError } from '../errors.js';
import { transportError } from './_connection.js';

/**
 * Names of the `node:diagnostics_channel` channels `rrxc/redis` publishes
 * on: what goes wrong in the background, out of any caller's reach. Nothing
 * is built or published while a channel has no subscriber; with none on
 * `error`, a failure is reported once per outage as a process warning.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { REDIS_CHANNELS, type RedisConflictMessage } from 'rrxc/redis';
 *
 * subscribe(REDIS_CHANNELS.conflict, (message) => {
 *   const { correlationId } = message as RedisConflictMessage;
 *   console.error(`reply to ${correlationId} delivered after another instance reported it rolled back`);
 * });
 * ```
 */
export const REDIS_CHANNELS = {
  /** A background Redis write or the heartbeat failed. Message: {@link RedisErrorMessage}. */
  error: 'rrxc:redis:error',
  /**
   * A reply was delivered on its owner although another instance had
   * already reported the ID `rolled-back` (the owner had lost its lease, or
   * its timer ran later than `deadlineGrace`). Message: {@link RedisConflictMessage}.
   */
  conflict: 'rrxc:redis:conflict',
  /**
   * This instance found its lease gone when renewing it: for a while other
   * instances considered it dead and may have rolled back its pending IDs.
   * Message: {@link RedisLeaseLostMessage}.
   */
  leaseLost: 'rrxc:redis:lease-lost',
} as const;

/** Message of `rrxc:redis:error`. */
export interface RedisErrorMessage {
  /** The instance that failed. */
  readonly instanceId: string;
  /** What it was doing: `register`, `own` (the turn's write for generated IDs), `end`, `heartbeat`, `connection`, `decode`. */
  readonly operation: string;
  /** The correlation IDs concerned, if any. */
  readonly correlationIds: readonly string[];
  /** What failed. */
  readonly error: BackplaneError;
}

/** Message of `rrxc:redis:conflict`. */
export interface RedisConflictMessage {
  /** The instance that delivered the reply. */
  readonly instanceId: string;
  /** The ID both delivered and reported rolled back. */
  readonly correlationId: string;
}

/** Message of `rrxc:redis:lease-lost`. */
export interface RedisLeaseLostMessage {
  /** This instance. */
  readonly instanceId: string;
  /** What the lease key held instead of this instance's token (`null`: nothing, it had expired). */
  readonly found: string | null;
}

/** @internal */
export const errorChannel = channel(REDIS_CHANNELS.error);
/** @internal */
export const conflictChannel = channel(REDIS_CHANNELS.conflict);
/** @internal */
export const leaseLostChannel = channel(REDIS_CHANNELS.leaseLost);

/**
 * @internal What goes wrong in one instance's background: published on
 * `rrxc:redis:error`, or, while nobody subscribes, as a process warning once
 * per outage — a dead Redis fails every registration and every heartbeat.
 */
export class Failures {
  #failing = false;

  constructor(readonly instanceId: string) {}

  /** Reports that `operation` (on `correlationIds`, if any) failed with `error`; never throws. */
  report(operation: string, correlationIds: readonly string[], error: unknown): void {
    const wrapped = error instanceof BackplaneError ? error : transportError(operation, error);
    if (errorChannel.hasSubscribers) {
      errorChannel.publish({ instanceId: this.instanceId, operation, correlationIds, error: wrapped } satisfies RedisErrorMessage);
    } else if (!this.#failing && operation !== 'connection') {
      // Connection errors themselves already reach callers as failed
      // commands or a failed ready().
      this.#failing = true;
      process.emitWarning(wrapped);
    }
  }

  /** Redis answered again: the next failure starts a new outage. */
  recovered(): void {
    this.#failing = false;
  }
}
