/**
 * One rrxc instance of the fault run, in its own process: a Controller on a
 * RedisBackplane and its tagStore, a reply handler (createReplyHandler) with
 * a compensation that records, and every event the check needs, appended to
 * `<FR_DIR>/<FR_NAME>.jsonl` (fsync'd) and sent to the driver over IPC.
 *
 * Run by test/redis/fault-run.test.ts: `node --import tsx test/redis/fault-run/instance.ts`.
 * Env: REDIS_URL, RRXC_PREFIX, FR_NAME, FR_DIR, FR_LEASE_TTL.
 */
import { subscribe } from 'node:diagnostics_channel';
import { Redis } from 'ioredis';
import { CHANNELS, Controller, type ExchangeResult, type ResponseMessage, type RollbackMessage, type TagStoreErrorMessage } from '../../../src/index.js';
import { createReplyHandler } from '../../../src/integrations/index.js';
import { REDIS_CHANNELS, RedisBackplane, type RedisConflictMessage, type RedisErrorMessage } from '../../../src/redis/index.js';
import { describeError, EventFile, type FaultEventBody } from '../../helpers/fault-log.js';
import { answeredRecords } from '../../helpers/redis-keys.js';
import type { Command, ReplyPayload } from './protocol.js';

const name = process.env['FR_NAME']!;
const log = new EventFile(process.env['FR_DIR']!, name);
const record = (body: FaultEventBody): void => {
  const event = log.record(body);
  if (process.connected) process.send!({ event });
};
const answer = (ref: number, body: Record<string, unknown> = {}): void => {
  if (process.connected) process.send!({ ref, ...body });
};

const leaseTtl = Number(process.env['FR_LEASE_TTL'] ?? 2_500);
const options = {
  url: process.env['REDIS_URL']!,
  prefix: process.env['RRXC_PREFIX']!,
  leaseTtl,
  forwardTimeout: 600,
  retryInterval: 100,
  commandTimeout: 600,
  connectTimeout: 2_000,
  deadlineGrace: 300,
  // Both connections carry the name; the driver kills the one that is not a subscriber.
  redisOptions: { connectionName: `fr-${name}` },
};

// A fresh instance may start while Redis is down (just killed): keep trying.
let backplane: RedisBackplane | undefined;
for (let attempt = 0; backplane === undefined; attempt++) {
  try {
    backplane = await RedisBackplane.connect(options);
  } catch (error) {
    if (attempt >= 10) throw error;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

const controller = new Controller<unknown, ReplyPayload>({
  backplane,
  tagStore: backplane.tagStore,
  storeTimeout: 1_000,
  onRollback: (ids) => record({ k: 'rollback-hook', ids: [...ids] }),
});

const handle = createReplyHandler(controller, {
  getCorrelationId: (m: { id: string; payload: ReplyPayload }) => m.id,
  getPayload: (m) => m.payload,
  getRequeues: () => 0,
  maxRequeues: 0,
  compensate: (payload, { correlationId }) => record({ k: 'compensate', id: correlationId, copy: payload.copy }),
});

subscribe(CHANNELS.responseDelivered, (message) => {
  const m = message as ResponseMessage;
  // The owner's delivery (the forwarder publishes the same outcome without an exchange).
  if (m.controller === controller && m.exchange !== undefined) record({ k: 'delivered-ch', id: m.correlationId, forwarded: m.forwarded === true });
});
subscribe(CHANNELS.rollbackTagged, (message) => {
  const m = message as RollbackMessage;
  if (m.controller === controller) record({ k: 'rollback-tagged', ids: [...m.correlationIds] });
});
subscribe(CHANNELS.tagStoreError, (message) => {
  const m = message as TagStoreErrorMessage;
  if (m.controller === controller) record({ k: 'store-error', ids: [...m.correlationIds], message: describeError(m.error).message });
});
const lastQuiet = new Map<string, number>();
subscribe(REDIS_CHANNELS.error, (message) => {
  const m = message as RedisErrorMessage;
  if (m.correlationIds.length === 0) {
    // Heartbeats and connection errors: one line per operation and half second is enough.
    const last = lastQuiet.get(m.operation) ?? 0;
    if (Date.now() - last < 500) return;
    lastQuiet.set(m.operation, Date.now());
  }
  record({ k: 'redis-error', operation: m.operation, ids: [...m.correlationIds], message: m.error?.message?.slice(0, 200) });
});
subscribe(REDIS_CHANNELS.conflict, (message) => record({ k: 'conflict', id: (message as RedisConflictMessage).correlationId }));
subscribe(REDIS_CHANNELS.leaseLost, () => record({ k: 'lease-lost' }));
// Nothing of the library may kill the process quietly.
process.on('warning', () => undefined);

/** The result's fields that exist once the lead's claim lands (`committed`, `undecided`), read if present. */
function extra(result: ExchangeResult<unknown, ReplyPayload>, field: 'committed' | 'undecided'): { [K in typeof field]?: string[] } {
  const value = (result as unknown as Record<string, unknown>)[field];
  return Array.isArray(value) ? { [field]: value.map(String) } : {};
}

function open(command: Extract<Command, { op: 'open' }>): void {
  const xc = controller.createExchange({ timeout: command.timeout });
  const handles = command.chosen.map((id) => xc.registerRequest(id === null ? {} : { correlationId: id }));
  const ids = handles.map((h) => h.correlationId);
  record({ k: 'registered', xid: command.xid, ids, chosen: command.chosen.map((id) => id !== null), timeout: command.timeout });
  answer(command.ref, { ids });
  handles.forEach((h) => {
    h.response.then(
      (payload) => record({ k: 'delivered', id: h.correlationId, copy: payload.copy, by: payload.by }),
      () => undefined,
    );
  });
  xc.wait().then(
    (result) => {
      const answered = result.entries.filter((e) => e.response !== undefined).map((e) => e.correlationId);
      record({
        k: 'ended',
        xid: command.xid,
        status: result.status,
        ...(result.reason !== undefined ? { reason: describeError(result.reason).message } : {}),
        answered,
        unanswered: [...result.unanswered],
        ...extra(result, 'committed'),
        ...extra(result, 'undecided'),
      });
    },
    (error: unknown) => record({ k: 'ended', xid: command.xid, status: 'wait-rejected', reason: describeError(error).message, answered: [], unanswered: [] }),
  );
}

async function reply(command: Extract<Command, { op: 'reply' }>): Promise<void> {
  const { rid, id, copy } = command;
  record({ k: 'reply-start', rid, id, copy });
  const decision = await handle({ id, payload: { id, copy, by: name } });
  record({
    k: 'reply-result',
    rid,
    id,
    copy,
    outcome: decision.outcome,
    action: decision.action,
    compensated: decision.compensated,
    ...(decision.error !== undefined ? { error: describeError(decision.error) } : {}),
  });
  answer(command.ref);
}

async function audit(command: Extract<Command, { op: 'audit' }>): Promise<void> {
  // What the owner's answered records say of a generated ID: a forward recorded as delivered is there.
  const redis = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const records = new Map<string, Promise<Map<string, string>>>();
  await Promise.all(
    command.ids.map(async (id) => {
      try {
        const owner = id.includes('~') ? id.slice(0, id.indexOf('~')) : undefined;
        if (owner !== undefined && !records.has(owner)) records.set(owner, answeredRecords(redis, options.prefix, owner));
        const answered = owner === undefined ? undefined : (await records.get(owner)!).has(id);
        record({ k: 'audit', id, rolledBack: await controller.isRolledBack(id), ...(answered === undefined ? {} : { answered }) });
      } catch (error) {
        record({ k: 'audit', id, error: describeError(error) });
      }
    }),
  );
  redis.disconnect();
  answer(command.ref);
}

process.on('message', (command: Command) => {
  switch (command.op) {
    case 'open':
      open(command);
      return;
    case 'reply':
      void reply(command);
      return;
    case 'audit':
      void audit(command);
      return;
    case 'ping':
      answer(command.ref);
      return;
    case 'close':
      void controller.close().finally(() => {
        answer(command.ref);
        log.close();
        process.disconnect();
        process.exit(0);
      });
      return;
  }
});
// The driver gone (its test failed hard): do not outlive it.
process.on('disconnect', () => process.exit(0));

record({ k: 'ready', instanceId: backplane.instanceId, pid: process.pid });
