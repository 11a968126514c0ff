import { checkId, checkOptionsObject, checkTtl, optionKeys } from './_validate.js';
import type { TagStore } from './adapters.js';
import { InvalidArgumentError } from './errors.js';
import { DEFAULT_COMMITTED_TAG, DEFAULT_MAX_ID_LENGTH, DEFAULT_ROLLBACK_TAG, DEFAULT_ROLLBACK_TTL } from './options.js';

/**
 * What a worker's claim on an ID decided:
 *
 * - `won`: the worker holds the decision — commit the work; the requester's
 *   end will not roll it back (it reports the ID in `result.committed`);
 * - `committed`: an earlier attempt at this request committed it — do not
 *   do the work again, send its reply again if you must;
 * - `rolled-back`: the requester's exchange ended first and tagged the ID
 *   for rollback — do not commit (roll your transaction back); a reply would
 *   be compensated.
 */
export type CommitDecision = 'won' | 'committed' | 'rolled-back';

/** Options of {@link claimCommitted}; they must match the requester's controller. */
export interface ClaimCommittedOptions {
  /** The requester's `committedTag`. @defaultValue `"committed"` */
  committedTag?: string;
  /** The requester's `rollbackTag`. @defaultValue `"rollback"` */
  rollbackTag?: string;
  /** Milliseconds the committed tag lives; `0`: never. @defaultValue the default `rollbackTtl`, 3 h */
  ttl?: number;
}

const CLAIM_COMMITTED_KEYS = optionKeys<ClaimCommittedOptions>({ committedTag: true, rollbackTag: true, ttl: true });

/**
 * The worker's half of the one decision on a correlation ID: claims the
 * committed tag against the rollback tag, in the store the requester's
 * controller uses. Call it right before committing the work the request
 * asked for; of this claim and the requester's rollback claim, exactly one
 * wins. With `rrxc/postgres`, pass `store.within(client)` to make the claim
 * inside the worker's own transaction: it then commits, or rolls back, with
 * the business writes.
 *
 * @param store - The tag store the requester's controller was given.
 * @param correlationId - The ID the request carried.
 * @param options - Tag names and TTL, when the controller was given others.
 * @group Decisions
 * @returns What was decided; commit only on `won`.
 * @throws {@link InvalidArgumentError} for a bad ID or option; the store's own error (as a rejection) when it fails: then nothing is decided.
 *
 * @example
 * ```ts
 * import { claimCommitted, MemoryTagStore } from 'rrxc';
 *
 * const store = new MemoryTagStore(); // the one the requester's controller was given
 * const correlationId = 'order-42'; // as the request carried it
 * if ((await claimCommitted(store, correlationId)) === 'won') {
 *   // commit the work; a late reply is `committed`, never compensated
 * }
 * ```
 */
export async function claimCommitted(store: TagStore, correlationId: string, options?: ClaimCommittedOptions): Promise<CommitDecision> {
  if (typeof store?.claim !== 'function') throw new InvalidArgumentError('claimCommitted needs a TagStore with claim()');
  checkId(correlationId, 'correlationId', DEFAULT_MAX_ID_LENGTH);
  const given = checkOptionsObject(options, 'claimCommitted options', CLAIM_COMMITTED_KEYS) as ClaimCommittedOptions;
  const committedTag = given.committedTag ?? DEFAULT_COMMITTED_TAG;
  const rollbackTag = given.rollbackTag ?? DEFAULT_ROLLBACK_TAG;
  checkId(committedTag, 'committedTag', DEFAULT_MAX_ID_LENGTH);
  checkId(rollbackTag, 'rollbackTag', DEFAULT_MAX_ID_LENGTH);
  const ttl = checkTtl('ttl', given.ttl ?? DEFAULT_ROLLBACK_TTL);
  const holder = await store.claim(correlationId, committedTag, ttl, [rollbackTag]);
  if (holder === undefined) return 'won';
  return holder === committedTag ? 'committed' : 'rolled-back';
}
