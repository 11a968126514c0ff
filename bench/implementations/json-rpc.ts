// json-rpc-2.0's request correlation: JSONRPCClient with the deadline wrapper
// its docs show (`client.timeout(ms).request(...)`). The remote answers with
// `client.receive(response)`, exactly what its docs do with a WebSocket's
// `onmessage`; the reply is built in the remote (the JSONRPCServer's job lives
// in another process in a real deployment, and rrxc has no server side to
// compare it with), and no JSON encoding happens anywhere, for anyone.
import { JSONRPCClient, type JSONRPCRequest } from 'json-rpc-2.0';
import { ANSWERED, Remote, type Payload } from '../remote.js';
import { eachRequest } from './each-request.js';
import type { Implementation, Instance } from './types.js';

export const jsonRpc: Implementation = {
  name: 'json-rpc-2.0',
  wiring: 'JSONRPCClient, `client.timeout(ms).request("echo", payload)`; replies fed to `client.receive()` in memory (no JSON encoding)',
  timeouts: true,
  create({ autoReply, timeout }): Instance {
    const client: JSONRPCClient = new JSONRPCClient((request: JSONRPCRequest) => remote.send(request));
    const requester = client.timeout(timeout);
    const reply = (id: number, payload: Payload): void => client.receive({ jsonrpc: '2.0', id, result: payload });
    const remote: Remote<JSONRPCRequest> = new Remote<JSONRPCRequest>((m) => {
      const payload = m.params as Payload;
      if (!payload.drop) reply(m.id as number, payload);
    }, autoReply);
    return {
      remote,
      rolledBack: 0,
      exchange: eachRequest((payload) => requester.request('echo', payload)),
      keyOf: (m: JSONRPCRequest) => m.id as number,
      reply: (key) => reply(key as number, ANSWERED),
      close() {},
    };
  },
};

