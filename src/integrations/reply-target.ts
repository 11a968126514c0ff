import type { Controller } from '../controller.js';
import type { RegisterResponseOptions } from '../options.js';
import type { ResponseOutcome } from '../types.js';

/**
 * The part of a {@link Controller} the integrations use: routing a reply and
 * the claim behind "compensate once". Any `Controller<Req, Res>`
 * satisfies it, whatever its `Req`.
 *
 * @typeParam Res - Type of the reply messages.
 */
export type ReplyTarget<Res> = Pick<Controller<unknown, Res>, 'claim' | 'untag'> & {
  /** Routes a reply: {@link Controller.registerResponse}. */
  registerResponse(options: RegisterResponseOptions<Res>): Promise<ResponseOutcome>;
};

/**
 * Default tag that marks a rolled-back correlation ID whose compensation has
 * run, so that a second copy of the same late reply (a redelivery, a
 * partner's retry) is acknowledged without compensating again.
 */
export const DEFAULT_COMPENSATED_TAG = 'compensated';

