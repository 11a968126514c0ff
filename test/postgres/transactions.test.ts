// The claim inside a transaction: a worker claims "committed" in the
// transaction that holds its business writes (store.within(client)), the
// requester's end of exchange claims "rolled back" on the store's pool, and
// exactly one of them wins, atomically with the business data.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimCommitted, Controller, type CommitDecision } from '../../src/index.js';
import { PostgresTagStore } from '../../src/postgres/index.js';
import { postgresForFile } from '../helpers/postgres-for-file.js';

/** Workers in flight at once in the race, each holding a client for its transaction. */
const PARALLEL = 20;
const RACES = 1_000;

const db = postgresForFile('transactions', 8);
let store: PostgresTagStore;
/** The workers' clients: one per transaction in flight. */
let workers: pg.Pool;
const orders = (): string => `"${db.schema}"."orders"`;

beforeAll(async () => {
  store = new PostgresTagStore({ connectionString: db.url, poolConfig: { max: PARALLEL }, schema: db.schema, table: 'decisions' });
  await store.setup();
  workers = new pg.Pool({ connectionString: db.url, max: PARALLEL });
  await db.pool.query(`CREATE TABLE ${orders()} (id text PRIMARY KEY, sku text NOT NULL)`);
});

afterAll(async () => {
  await store?.close();
  await workers?.end();
});

/** Runs `body` in a transaction on a client of its own; `body` answers whether to commit. */
async function inTransaction(body: (client: pg.PoolClient) => Promise<boolean>, begin = 'BEGIN'): Promise<boolean> {
  const client = await workers.connect();
  try {
    await client.query(begin);
    const commit = await body(client);
    await client.query(commit ? 'COMMIT' : 'ROLLBACK');
    return commit;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

const hasOrder = async (id: string): Promise<boolean> => (await db.pool.query(`SELECT 1 FROM ${orders()} WHERE id = $1`, [id])).rowCount === 1;

/** A transaction left open until `end(commit)` is called: BEGIN, the order, the worker's claim. */
async function openWorker(id: string): Promise<{ decision: CommitDecision; end(commit: boolean): Promise<void> }> {
  const client = await workers.connect();
  await client.query('BEGIN');
  await client.query(`INSERT INTO ${orders()} (id, sku) VALUES ($1, 'sku')`, [id]);
  const decision = await claimCommitted(store.within(client), id);
  return {
    decision,
    async end(commit) {
      await client.query(commit ? 'COMMIT' : 'ROLLBACK');
      client.release();
    },
  };
}

/** Whether `promise` is still pending after `ms`. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol('pending');
  return (await Promise.race([promise, sleep(ms, pending)])) === pending;
}

describe('PostgresTagStore.within(client): the claim in the worker transaction', () => {
  it('rolls back with the transaction: no tag is left, and the ID can be claimed again', async () => {
    await inTransaction(async (client) => {
      expect(await claimCommitted(store.within(client), 'rolled-back-tx')).toBe('won');
      expect(await store.within(client).getTags('rolled-back-tx')).toEqual(['committed']);
      return false;
    });
    expect(await store.getTags('rolled-back-tx')).toEqual([]);
    expect(await store.claim('rolled-back-tx', 'rollback', 60_000, ['committed'])).toBeUndefined();
  });

  it('commits with the transaction, and the requester is then told committed', async () => {
    await inTransaction(async (client) => (await claimCommitted(store.within(client), 'committed-tx')) === 'won');
    expect(await store.claim('committed-tx', 'rollback', 60_000, ['committed'])).toBe('committed');
  });

  it('makes the requester wait for an open worker transaction, then tells it what that transaction did', async () => {
    const committing = await openWorker('wait-commit');
    expect(committing.decision).toBe('won');
    const told = store.claim('wait-commit', 'rollback', 60_000, ['committed']);
    expect(await pendingAfter(told, 150)).toBe(true);
    await committing.end(true);
    expect(await told).toBe('committed');
    expect(await hasOrder('wait-commit')).toBe(true);

    const rollingBack = await openWorker('wait-rollback');
    expect(rollingBack.decision).toBe('won');
    const wins = store.claim('wait-rollback', 'rollback', 60_000, ['committed']);
    expect(await pendingAfter(wins, 150)).toBe(true);
    await rollingBack.end(false);
    expect(await wins).toBeUndefined();
    expect(await store.getTags('wait-rollback')).toEqual(['rollback']);
    expect(await hasOrder('wait-rollback')).toBe(false);
  });

  it('tells a worker that comes after the requester rolled back, and its transaction commits nothing', async () => {
    expect(await store.claim('too-late', 'rollback', 60_000, ['committed'])).toBeUndefined();
    const committed = await inTransaction(async (client) => {
      await client.query(`INSERT INTO ${orders()} (id, sku) VALUES ($1, 'sku')`, ['too-late']);
      return (await claimCommitted(store.within(client), 'too-late')) === 'won';
    });
    expect(committed).toBe(false);
    expect(await hasOrder('too-late')).toBe(false);
  });

  describe('under REPEATABLE READ and SERIALIZABLE', () => {
    for (const level of ['REPEATABLE READ', 'SERIALIZABLE']) {
      it(`${level}: a claim that would need a newer snapshot fails with serialization_failure (40001), never deciding twice`, async () => {
        for (const [id, before] of [[`rr-new-${level}`, undefined], [`rr-existing-${level}`, 'audit']] as const) {
          if (before !== undefined) await store.tag(id, before, 60_000);
          const client = await workers.connect();
          try {
            await client.query(`BEGIN ISOLATION LEVEL ${level}`);
            await client.query('SELECT 1'); // the snapshot is taken here
            expect(await store.claim(id, 'rollback', 60_000, ['committed'])).toBeUndefined();
            await expect(claimCommitted(store.within(client), id)).rejects.toMatchObject({ code: '40001' });
            await client.query('ROLLBACK');
          } finally {
            client.release();
          }
          expect(await store.getTags(id)).toEqual(before === undefined ? ['rollback'] : expect.arrayContaining(['rollback', before]));
        }
      });

      it(`${level}: a claim that meets no concurrent decision works as under READ COMMITTED`, async () => {
        const id = `rr-alone-${level}`;
        await inTransaction(async (client) => (await claimCommitted(store.within(client), id)) === 'won', `BEGIN ISOLATION LEVEL ${level}`);
        expect(await store.claim(id, 'rollback', 60_000, ['committed'])).toBe('committed');
      });
    }
  });
});

describe('the race, 1 000 times: a worker transaction against the requester exchange timing out', () => {
  /** What one round did, from both sides. */
  interface Round {
    readonly id: string;
    readonly requester: 'unanswered' | 'committed' | 'undecided' | 'missing';
    readonly decision: CommitDecision;
    /** The worker committed (it won and did not choose to roll back). */
    readonly committed: boolean;
    /** The requester's exchange ended while the worker's claim was made but its transaction still open. */
    readonly overlapped: boolean;
  }

  it(
    'decides every ID once: never both, never neither, and the order exists exactly when the worker won',
    async () => {
      const controller = new Controller<{ sku: string }, unknown>({ tagStore: store, timeout: 5, storeTimeout: 10_000 });
      const rounds: Round[] = [];
      const round = async (i: number): Promise<Round> => {
        const xc = controller.createExchange();
        // A generated ID: one the controller never registered before, so
        // registering it writes nothing to the store (an ID of the
        // application's own is cleaned of an earlier attempt's tags first).
        const { correlationId: id } = xc.registerRequest({ message: { sku: `sku-${i}` } });
        let claimedAt = Infinity;
        let endedAt = -Infinity;
        // The worker: its business write, then the claim, then some more work
        // while the transaction (and the claim) is open; some roll back anyway.
        const worker = (async () => {
          let decision: CommitDecision = 'rolled-back';
          const committed = await inTransaction(async (client) => {
            await client.query(`INSERT INTO ${orders()} (id, sku) VALUES ($1, $2)`, [id, `sku-${i}`]);
            await sleep(Math.random() * 6);
            decision = await claimCommitted(store.within(client), id);
            claimedAt = performance.now();
            await sleep(Math.random() * 4);
            return decision === 'won' && Math.random() >= 0.15;
          });
          endedAt = performance.now();
          return { decision, committed };
        })();
        const [result, { decision, committed }] = await Promise.all([xc.wait(), worker]);
        const endedExchange = performance.now() - (Date.now() - result.endedAt);
        const requester = result.unanswered.includes(id) ? 'unanswered' : result.committed.includes(id) ? 'committed' : result.undecided.includes(id) ? 'undecided' : 'missing';
        return { id, requester, decision, committed, overlapped: endedExchange >= claimedAt && endedExchange <= endedAt };
      };
      try {
        for (let next = 0; next < RACES; next += PARALLEL) {
          rounds.push(...(await Promise.all(Array.from({ length: Math.min(PARALLEL, RACES - next) }, (_, k) => round(next + k)))));
        }
      } finally {
        await controller.close();
      }

      const ids = rounds.map((r) => r.id);
      const { rows: tagRows } = await db.pool.query<{ id: string; tags: string[] }>(
        `SELECT id, array(SELECT jsonb_object_keys(tags) ORDER BY 1) AS tags FROM "${db.schema}"."decisions" WHERE id = ANY($1)`,
        [ids],
      );
      const tags = new Map(tagRows.map((r) => [r.id, r.tags]));
      const { rows: orderRows } = await db.pool.query<{ id: string }>(`SELECT id FROM ${orders()} WHERE id = ANY($1)`, [ids]);
      const ordered = new Set(orderRows.map((r) => r.id));

      const bothWon = rounds.filter((r) => r.requester === 'unanswered' && r.committed);
      const neitherWon = rounds.filter((r) => r.requester !== 'unanswered' && !r.committed);
      const wrongTold = rounds.filter((r) => (r.requester === 'committed') !== r.committed);
      const wrongRows = rounds.filter((r) => ordered.has(r.id) !== r.committed);
      const wrongTags = rounds.filter((r) => JSON.stringify(tags.get(r.id)) !== JSON.stringify([r.committed ? 'committed' : 'rollback']));
      const counts = {
        rounds: rounds.length,
        requesterWon: rounds.filter((r) => r.requester === 'unanswered').length,
        workerCommitted: rounds.filter((r) => r.committed).length,
        workerWonThenRolledBack: rounds.filter((r) => r.decision === 'won' && !r.committed).length,
        workerTooLate: rounds.filter((r) => r.decision === 'rolled-back').length,
        requesterWaitedForOpenTransaction: rounds.filter((r) => r.overlapped).length,
        undecided: rounds.filter((r) => r.requester === 'undecided' || r.requester === 'missing').length,
        bothWon: bothWon.length,
        neitherWon: neitherWon.length,
      };
      console.log(`PostgreSQL claim race: ${JSON.stringify(counts)}`);

      expect(rounds).toHaveLength(RACES);
      expect(bothWon).toEqual([]);
      expect(neitherWon).toEqual([]);
      expect(wrongTold).toEqual([]);
      expect(wrongRows).toEqual([]);
      expect(wrongTags).toEqual([]);
      expect(counts.undecided).toBe(0);
      // The race was run, not sidestepped: each side won some, and some
      // workers rolled back after winning (then the requester won). Waiting
      // for an open transaction is pinned above, deterministically; here it
      // is only counted (by the clocks of both sides, to the millisecond).
      expect(counts.requesterWon).toBeGreaterThan(0);
      expect(counts.workerCommitted).toBeGreaterThan(0);
      expect(counts.workerWonThenRolledBack).toBeGreaterThan(0);
      expect(counts.workerTooLate).toBeGreaterThan(0);
    },
    180_000,
  );
});
