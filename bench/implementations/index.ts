// Every implementation, in the order tables and charts show them.
import { birpc } from './birpc.js';
import { floor } from './floor.js';
import { jsonRpc } from './json-rpc.js';
import { naive } from './naive.js';
import { rrxc, rrxcNoTimeout } from './rrxc.js';
import type { Implementation } from './types.js';

export const IMPLEMENTATIONS: readonly Implementation[] = [floor, naive, jsonRpc, birpc, rrxc, rrxcNoTimeout];
export const PEERS = ['naive', 'json-rpc-2.0', 'birpc'] as const;
