// The one shape every variant has, whatever the broker and library: the
// runner and the measurement know nothing else about them.
import type { Broker, Echo } from './config.js';

/**
 * What a variant is, for the targets:
 *
 * - `hand-rolled`: the pattern most codebases write (a `Map` of
 *   correlation ID → resolver, one `setTimeout` per request);
 * - `peer`: a packaged client's own request/reply API;
 * - `rrxc`: rrxc as its docs wire it on that broker;
 * - `rrxc-ack-each`: RabbitMQ's consumeReplies with its default, one ack per reply;
 * - `rrxc-by-hand`: rrxc with `registerResponse` called from a consumer of one's own;
 * - `rrxc-direct-reply-to`: rrxc's RabbitMQ Direct Reply-to mode;
 * - `backplane-local` / `backplane-forwarded`: rrxc with RedisBackplane, the reply
 *   landing on the instance that waits for it, or on the other one.
 */
export type Role = 'hand-rolled' | 'peer' | 'rrxc' | 'rrxc-ack-each' | 'rrxc-by-hand' | 'rrxc-direct-reply-to' | 'backplane-local' | 'backplane-forwarded';

export interface VariantInfo {
  readonly broker: Broker;
  /** Label in tables and the chart. */
  readonly name: string;
  readonly role: Role;
  /** One sentence: how it is wired, for the docs. */
  readonly wiring: string;
}

export interface Variant extends VariantInfo {
  /** Sends one request and resolves with its reply. */
  call(message: Echo): Promise<Echo>;
  /** Releases everything it opened; nothing of it may keep the process alive. */
  close(): Promise<void>;
}

/** A slot the suite has but could not fill in this run, and why. */
export interface Skipped extends VariantInfo {
  readonly reason: string;
}

/** What a broker's set-up hands the runner. */
export interface BrokerSetup {
  readonly broker: Broker;
  /** The server's name and version, for the report. */
  readonly server: string;
  readonly variants: readonly Variant[];
  readonly skipped: readonly Skipped[];
  /** Removes what the run created on the broker (queues, keys) and closes its admin connection. */
  cleanup(): Promise<void>;
}
