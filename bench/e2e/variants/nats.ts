// The NATS variants: nats.js' own `nc.request`, a hand-rolled client on an
// inbox of its own, and rrxc over NATS as its docs wire it
// (consumeNatsReplies + replies.request). Each has a connection of its
// own; all send to the one subject the echo worker serves.
import { randomUUID } from 'node:crypto';
import { connect, createInbox, type NatsConnection } from 'nats';
import { Controller } from '../../../src/index.js';
import { consumeNatsReplies } from '../../../src/nats/index.js';
import { TIMEOUT_MS, URLS, type Echo } from '../config.js';
import type { BrokerSetup, Variant, VariantInfo } from '../variant.js';
import { Pending } from './hand-rolled.js';

/** The subject the echo worker serves. */
export const natsSubject = (runId: string): string => `${runId}.echo`;

const INFO = {
  request: {
    broker: 'nats',
    name: 'nats.js request',
    role: 'peer',
    wiring: "nats.js 2: `nc.request(subject, JSON.stringify(message), { timeout: 30 000 })` (its muxed inbox, no-responders on), reply `msg.json()`",
  },
  handRolled: {
    broker: 'nats',
    name: 'hand-rolled inbox',
    role: 'hand-rolled',
    wiring: 'nats.js: one subscription to `<inbox>.*`, `nc.publish(subject, data, { reply: `<inbox>.<id>` })`, Map of id (randomUUID) → {resolve, timer}, setTimeout per request',
  },
  rrxc: {
    broker: 'nats',
    name: 'rrxc consumeNatsReplies',
    role: 'rrxc',
    wiring: "rrxc as its docs wire NATS: `consumeNatsReplies(nc, controller)` and `replies.request(subject, message)` (JSON encoded, ID in the reply subject)",
  },
} as const satisfies Record<string, VariantInfo>;

const connectNats = (name: string): Promise<NatsConnection> => connect({ servers: URLS.nats, name });
const encode = (message: Echo): string => JSON.stringify(message);

async function natsRequest(subject: string): Promise<Variant> {
  const nc = await connectNats('rrxc-e2e-nats-request');
  return {
    ...INFO.request,
    async call(message) {
      return (await nc.request(subject, encode(message), { timeout: TIMEOUT_MS })).json<Echo>();
    },
    close: () => nc.close(),
  };
}

async function handRolled(subject: string): Promise<Variant> {
  const nc = await connectNats('rrxc-e2e-hand-rolled');
  const inbox = createInbox();
  const pending = new Pending<Echo>();
  const subscription = nc.subscribe(`${inbox}.*`, {
    callback: (error, message) => {
      if (error === null) pending.settle(message.subject.slice(inbox.length + 1), message.json<Echo>());
    },
  });
  await nc.flush();
  return {
    ...INFO.handRolled,
    call(message) {
      const id = randomUUID();
      const reply = pending.wait(id);
      nc.publish(subject, encode(message), { reply: `${inbox}.${id}` });
      return reply;
    },
    async close() {
      subscription.unsubscribe();
      pending.rejectAll(new Error('closed'));
      await nc.close();
    },
  };
}

async function rrxc(subject: string): Promise<Variant> {
  const nc = await connectNats('rrxc-e2e-rrxc');
  const controller = new Controller<Echo, Echo>({ timeout: TIMEOUT_MS });
  const replies = await consumeNatsReplies(nc, controller);
  await nc.flush();
  return {
    ...INFO.rrxc,
    call: (message) => replies.request(subject, message),
    async close() {
      await replies.close();
      await controller.close();
      await nc.close();
    },
  };
}

export async function setupNats(runId: string): Promise<BrokerSetup> {
  const subject = natsSubject(runId);
  const variants = [await natsRequest(subject), await handRolled(subject), await rrxc(subject)];
  const admin = await connectNats('rrxc-e2e-admin');
  const server = `NATS ${admin.info?.version ?? '?'}`;
  await admin.close();
  return {
    broker: 'nats',
    server,
    variants,
    skipped: [],
    // Core NATS keeps nothing: subjects and inboxes go with the connections.
    cleanup: async () => undefined,
  };
}
