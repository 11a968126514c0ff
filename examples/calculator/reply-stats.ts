import type { ReplyDecision, ReplyOutcome } from '../../src/integrations/index.js';
import type { Answer } from './calculator.js';

/** What became of the replies one instance consumed. */
export interface ReplyStats {
  /** Replies this instance consumed. */
  readonly received: number;
  /**
   * Outcomes of the replies this instance consumed for another instance's
   * exchange: the backplane forwarded each one to its owner, and the outcome
   * is the owner's (`delivered`: it reached the waiting request there).
   */
  readonly crossed: Readonly<Partial<Record<ReplyOutcome, number>>>;
}

/** Crossed replies logged one by one; after that they are only counted. */
const LOGGED_CROSSINGS = 10;

/**
 * Counts the replies an instance consumed and tells those that crossed
 * instances: the owner of a generated ID is its head, `<instanceId>~…`.
 * Without `instanceId` (a single instance) nothing crosses.
 */
export function createReplyStats(instanceId: string | undefined, log: (line: string) => void) {
  let received = 0;
  let crossings = 0;
  const crossed: Partial<Record<ReplyOutcome, number>> = {};

  return {
    stats: {
      get received() {
        return received;
      },
      crossed,
    } satisfies ReplyStats as ReplyStats,

    onDecision(decision: ReplyDecision<Answer>): void {
      received++;
      const id = decision.correlationId;
      const separator = id?.indexOf('~') ?? -1;
      if (instanceId === undefined || id === undefined || separator < 0 || decision.outcome === 'invalid') return;
      const owner = id.slice(0, separator);
      if (owner === instanceId) return;
      crossed[decision.outcome] = (crossed[decision.outcome] ?? 0) + 1;
      crossings++;
      if (crossings <= LOGGED_CROSSINGS) {
        log(`reply ${id} crossed instances: received by ${instanceId}, forwarded to its owner ${owner}, which answered ${decision.outcome}`);
        if (crossings === LOGGED_CROSSINGS) log(`further crossed replies are counted, not logged`);
      }
    },

    /** One line: how many replies came here, and what became of those that crossed to another instance. */
    summary(): string {
      const outcomes = Object.entries(crossed).map(([outcome, count]) => `${count} ${outcome}`);
      return `replies received by ${instanceId ?? 'this instance'}: ${received}; forwarded to their owner on another instance: ${crossings}${outcomes.length > 0 ? ` (${outcomes.join(', ')})` : ''}`;
    },
  };
}
