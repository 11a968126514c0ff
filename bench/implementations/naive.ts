// The hand-rolled pattern found in most codebases: a Map of
// {resolve, reject, timer}, one setTimeout per request, a reply clears the
// timer. On timeout it remembers the ID (a plain Map, unbounded: cheaper than
// rrxc's bounded store, so it favours naive) so that a late reply could be
// acknowledged, then rejects.
import { ANSWERED, Remote, type Payload } from '../remote.js';
import { eachRequest } from './each-request.js';
import type { Implementation, Instance } from './types.js';

interface Wire {
  readonly id: number;
  readonly payload: Payload;
}

interface Entry {
  readonly resolve: (value: Payload) => void;
  readonly reject: (reason: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export const naive: Implementation = {
  name: 'naive',
  wiring: 'Map<number, {resolve, reject, timer}>, one setTimeout per request, integer IDs',
  timeouts: true,
  create({ autoReply, timeout }): Instance {
    const pending = new Map<number, Entry>();
    const timedOut = new Map<number, number>();
    let next = 0;
    const reply = (id: number, payload: Payload): void => {
      const entry = pending.get(id);
      if (entry === undefined) return;
      pending.delete(id);
      clearTimeout(entry.timer);
      entry.resolve(payload);
    };
    const remote = new Remote<Wire>((m) => {
      if (!m.payload.drop) reply(m.id, m.payload);
    }, autoReply);
    const one = (payload: Payload): Promise<Payload> =>
      new Promise<Payload>((resolve, reject) => {
        const id = ++next;
        const timer = setTimeout(() => {
          pending.delete(id);
          timedOut.set(id, Date.now());
          reject(new Error(`request ${id} timed out after ${timeout} ms`));
        }, timeout);
        pending.set(id, { resolve, reject, timer });
        remote.send({ id, payload });
      });
    return {
      remote,
      rolledBack: 0,
      exchange: eachRequest(one),
      keyOf: (m: Wire) => m.id,
      reply: (key) => reply(key as number, ANSWERED),
      close() {
        for (const entry of pending.values()) clearTimeout(entry.timer);
        pending.clear();
        timedOut.clear();
      },
    };
  },
};

