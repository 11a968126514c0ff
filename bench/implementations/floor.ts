// The physical limit: a Map of pending entries and one promise per request,
// resolved when its reply comes. No deadline, no validation, integer IDs.
// No correlation layer can do less.
import { ANSWERED, Remote, type Payload } from '../remote.js';
import { eachRequest } from './each-request.js';
import type { Implementation, Instance } from './types.js';

interface Wire {
  readonly id: number;
  readonly payload: Payload;
}

export const floor: Implementation = {
  name: 'floor',
  wiring: 'Map<number, resolve> + one promise per request; no deadline (the physical limit)',
  timeouts: false,
  create({ autoReply }): Instance {
    const pending = new Map<number, (value: Payload) => void>();
    let next = 0;
    const reply = (id: number, payload: Payload): void => {
      const resolve = pending.get(id);
      if (resolve === undefined) return;
      pending.delete(id);
      resolve(payload);
    };
    const remote = new Remote<Wire>((m) => {
      if (!m.payload.drop) reply(m.id, m.payload);
    }, autoReply);
    const one = (payload: Payload): Promise<Payload> =>
      new Promise<Payload>((resolve) => {
        const id = ++next;
        pending.set(id, resolve);
        remote.send({ id, payload });
      });
    return {
      remote,
      rolledBack: 0,
      exchange: eachRequest(one),
      keyOf: (m: Wire) => m.id,
      reply: (key) => reply(key as number, ANSWERED),
      close() {
        pending.clear();
      },
    };
  },
};

