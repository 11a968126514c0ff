// What the peers without exchanges share: an "exchange" of n requests is n
// independent calls awaited together, the way their users would write it.
import type { Payload } from '../remote.js';
import type { Instance } from './types.js';

/**
 * `Instance.exchange` from `one`, which sends one request and answers the
 * promise of its reply: one request is that promise, several are awaited
 * with `Promise.all`.
 */
export function eachRequest(one: (payload: Payload) => PromiseLike<Payload>): Instance['exchange'] {
  return (requests, payload) => {
    if (requests === 1) return Promise.resolve(one(payload));
    const all: PromiseLike<Payload>[] = [];
    for (let i = 0; i < requests; i++) all.push(one(payload));
    return Promise.all(all);
  };
}
