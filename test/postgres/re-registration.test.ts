// The clean start of an ID the application chose, issued at registration and
// not awaited, must not undo a worker's decision that reaches the database
// first (found by the 1 000-race with stable IDs: both sides won 2 times in
// 1 000, when registration removed the committed tag too).
import pg from 'pg';
import { expect, it } from 'vitest';
import { claimCommitted, Controller } from '../../src/index.js';
import { PostgresTagStore } from '../../src/postgres/index.js';
import { postgresForFile } from '../helpers/postgres-for-file.js';

const db = postgresForFile('re-registration', 2);

it("keeps the worker's committed claim when the registration's clean start reaches the database after it", async () => {
  const requesterPool = new pg.Pool({ connectionString: db.url, max: 1 });
  const store = new PostgresTagStore({ pool: requesterPool, schema: db.schema, table: 'tags', purgeInterval: 0 });
  await store.setup();
  // The requester's only connection is busy: its clean start waits in the pool's queue.
  const busy = await requesterPool.connect();
  const controller = new Controller({ tagStore: store, timeout: 200 });
  try {
    const xc = controller.createExchange();
    void xc.registerRequest({ correlationId: 'order-9' }).response.catch(() => {});
    // The worker gets the request and commits its work, claiming in its own transaction.
    const worker = new pg.Client({ connectionString: db.url });
    await worker.connect();
    try {
      await worker.query('BEGIN');
      expect(await claimCommitted(store.within(worker), 'order-9')).toBe('won');
      await worker.query('COMMIT');
    } finally {
      await worker.end();
    }
    busy.release();
    expect(await xc.wait()).toMatchObject({ unanswered: [], committed: ['order-9'] });
  } finally {
    await controller.close();
    await requesterPool.end();
  }
});
