// rrxc, used as its docs show: one exchange per operation, one registered
// request per message sent, `wait()` for the result; the reply consumer calls
// `registerResponse`. Everything at its defaults (nanoid IDs, duplicate
// window, in-memory rollback tag store) except `maxPendingRequests`, raised
// so that a million background exchanges plus the measured ones fit.
//
// rrxc is measured as shipped: the compiled dist/ (`npm run bench` builds
// it first), as the peers are their published JavaScript. RRXC_SRC points
// the bench at another build or copy of the sources (a private experiment).
import type * as Rrxc from '../../src/index.js';
import { ANSWERED, Remote, type Payload } from '../remote.js';
import type { Implementation, Instance } from './types.js';

const source = process.env['RRXC_SRC'] || '../../dist/index.js';
const { Controller } = (await import(source)) as typeof Rrxc;

interface Wire {
  readonly correlationId: string;
  readonly payload: Payload;
}

function make(name: string, withTimeout: boolean, wiring: string): Implementation {
  return {
    name,
    wiring,
    timeouts: withTimeout,
    create({ autoReply, timeout }): Instance {
      let rolledBack = 0;
      const controller = new Controller<Payload, Payload>({
        maxPendingRequests: 2_100_000,
        ...(withTimeout ? { timeout } : {}),
        // What an application does to compensate; runs only for exchanges that ended unanswered.
        onRollback: (ids) => {
          rolledBack += ids.length;
        },
      });
      const reply = (correlationId: string, message: Payload): void => {
        void controller.registerResponse({ correlationId, message });
      };
      const remote = new Remote<Wire>((m) => {
        if (!m.payload.drop) reply(m.correlationId, m.payload);
      }, autoReply);
      return {
        remote,
        get rolledBack() {
          return rolledBack;
        },
        exchange(requests, payload) {
          const xc = controller.createExchange();
          for (let i = 0; i < requests; i++) {
            const { correlationId } = xc.registerRequest({ message: payload });
            remote.send({ correlationId, payload });
          }
          return xc.wait();
        },
        keyOf: (m: Wire) => m.correlationId,
        reply: (key) => reply(key as string, ANSWERED),
        close: () => controller.close(),
      };
    },
  };
}

export const rrxc = make('rrxc', true, '`createExchange()` (controller `timeout` = the scenario deadline), `registerRequest()`, `wait()`; replies via `registerResponse()`');
export const rrxcNoTimeout = make('rrxc (no timeout)', false, 'same, without a deadline: like for like with the floor');

