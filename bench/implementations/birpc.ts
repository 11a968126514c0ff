// birpc's request correlation: createBirpc with `post`/`on` as its docs show.
// `post` hands the message straight to the in-memory remote (no
// MessageChannel: a direct call is its cheapest in-process use, so this
// favours birpc); the remote feeds the reply to the handler birpc gave `on`.
// `proxify: false` + `$call` is its documented fast path (no Proxy, no
// closure per call). Its own default deadline is 60 s; like every other
// implementation it gets the scenario's deadline instead.
import { createBirpc } from 'birpc';
import { ANSWERED, Remote, type Payload } from '../remote.js';
import { eachRequest } from './each-request.js';
import type { Implementation, Instance } from './types.js';

interface EchoFunctions {
  echo(payload: Payload): Payload;
}

/** birpc's wire format for a call (`t: 'q'`) and its reply (`t: 's'`). */
interface Call {
  readonly t: 'q';
  readonly i: string;
  readonly a: [Payload];
}

export const birpc: Implementation = {
  name: 'birpc',
  wiring: 'createBirpc, `proxify: false`, `$call("echo", payload)`; `post` is a direct in-memory call, replies go to the `on` handler',
  timeouts: true,
  create({ autoReply, timeout }): Instance {
    let onMessage: ((data: unknown) => unknown) | undefined;
    const reply = (id: string, payload: Payload): void => {
      void onMessage!({ t: 's', i: id, r: payload });
    };
    const remote = new Remote<Call>((m) => {
      const payload = m.a[0];
      if (!payload.drop) reply(m.i, payload);
    }, autoReply);
    const rpc = createBirpc<EchoFunctions, Record<string, never>, false>(
      {},
      {
        post: (data: Call) => remote.send(data),
        on: (fn) => {
          onMessage = fn;
        },
        timeout,
        proxify: false,
      },
    );
    return {
      remote,
      rolledBack: 0,
      exchange: eachRequest((payload) => rpc.$call('echo', payload)),
      keyOf: (m: Call) => m.i,
      reply: (key) => reply(key as string, ANSWERED),
      close() {
        rpc.$close();
      },
    };
  },
};

