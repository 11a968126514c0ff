import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import { DEFAULT_TABLE, PostgresTagStore, type PostgresTagStoreOptions } from '../../src/postgres/index.js';
import { describeTagStore } from '../conformance/tag-store.js';
import { postgresForFile } from '../helpers/postgres-for-file.js';

const db = postgresForFile('tag_store');
const TABLE = 'conformance_tags';

beforeAll(async () => {
  await new PostgresTagStore({ pool: db.pool, schema: db.schema, table: TABLE, purgeInterval: 0 }).setup();
});

const emptyTable = async (): Promise<void> => void (await db.pool.query(`TRUNCATE "${db.schema}"."${TABLE}"`));

describeTagStore('PostgresTagStore on a given pool', async () => ({
  store: new PostgresTagStore({ pool: db.pool, schema: db.schema, table: TABLE }),
  cleanup: emptyTable,
}));

describeTagStore('PostgresTagStore on its own pool (connectionString)', async () => ({
  store: new PostgresTagStore({ connectionString: db.url, poolConfig: { max: 4 }, schema: db.schema, table: TABLE }),
  cleanup: emptyTable,
}));

describeTagStore('PostgresTagStore.within(client), outside any transaction', async () => {
  const client = await db.pool.connect();
  const store = new PostgresTagStore({ pool: db.pool, schema: db.schema, table: TABLE, purgeInterval: 0 }).within(client);
  return {
    store,
    cleanup: async () => {
      client.release();
      await emptyTable();
    },
  };
});

describe('PostgresTagStore options', () => {
  const invalid = (options: unknown, message: RegExp): void => {
    let thrown: unknown;
    try {
      new PostgresTagStore(options as PostgresTagStoreOptions);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    expect(thrown).toMatchObject({ code: 'ERR_RRXC_INVALID_ARGUMENT', message: expect.stringMatching(message) });
  };

  it('rejects an unknown key, naming the known ones', () => {
    invalid({ pool: db.pool, tabel: 'x' }, /unknown option `tabel`.*known: pool, connectionString/);
  });

  it('needs exactly one of pool and connectionString', () => {
    invalid({}, /exactly one of `pool`.*got neither/);
    invalid({ pool: db.pool, connectionString: 'postgres://x' }, /got both/);
    invalid({ pool: {} }, /pool must be a pg Pool/);
    invalid({ connectionString: '' }, /connectionString must be a non-empty string/);
    invalid({ pool: db.pool, poolConfig: { max: 1 } }, /poolConfig is only accepted together with connectionString/);
    invalid(null, /must be an object/);
  });

  it('takes any table or schema name PostgreSQL keeps as it is, and no other', () => {
    invalid({ pool: db.pool, table: '' }, /table must be a non-empty name/);
    invalid({ pool: db.pool, table: 'a\0b' }, /without NUL/);
    invalid({ pool: db.pool, table: 'x'.repeat(49) }, /at most 48 bytes/);
    invalid({ pool: db.pool, table: 'é'.repeat(25) }, /at most 48 bytes/);
    invalid({ pool: db.pool, schema: 'x'.repeat(64) }, /schema must be .* at most 63 bytes/);
    invalid({ pool: db.pool, table: 42 }, /table must be/);
    expect(() => new PostgresTagStore({ pool: db.pool, table: 'x'.repeat(48), purgeInterval: 0 })).not.toThrow();
  });

  it('takes a purgeInterval from 0 (never) to the longest timer', () => {
    invalid({ pool: db.pool, purgeInterval: -1 }, /purgeInterval must be an integer/);
    invalid({ pool: db.pool, purgeInterval: 1.5 }, /purgeInterval/);
    invalid({ pool: db.pool, purgeInterval: 2 ** 31 }, /purgeInterval/);
    invalid({ pool: db.pool, purgeInterval: Infinity }, /purgeInterval/);
  });

  it('defaults the table to rrxc_tags', () => {
    expect(DEFAULT_TABLE).toBe('rrxc_tags');
    expect(new PostgresTagStore({ pool: db.pool, purgeInterval: 0 }).setupSql()).toContain('CREATE TABLE IF NOT EXISTS "rrxc_tags"');
  });
});

describe('PostgresTagStore', () => {
  const storeOn = (table: string, options: Partial<PostgresTagStoreOptions> = {}): PostgresTagStore =>
    new PostgresTagStore({ pool: db.pool, schema: db.schema, table, purgeInterval: 0, ...options });

  it('sets up idempotently, from several processes at once: each with a pool of its own', async () => {
    const stores = Array.from({ length: 6 }, () => new PostgresTagStore({ connectionString: db.url, schema: db.schema, table: 'concurrent_setup', purgeInterval: 0 }));
    try {
      await Promise.all(stores.map((store) => store.setup()));
      await Promise.all(stores.map((store) => store.setup()));
      expect(await stores[0]!.claim('a', 'rollback', 60_000, ['committed'])).toBeUndefined();
      expect(await stores[5]!.claim('a', 'committed', 60_000, ['rollback'])).toBe('rollback');
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('quotes the names it is given: quotes, dollar quotes, spaces and SQL in them are just names', async () => {
    for (const table of ['we"ird', '$body$ x $body0$', 'tags; DROP TABLE users; --', 'Ünï 😀']) {
      const store = storeOn(table);
      await store.setup();
      await store.tag('id', 'rollback', 60_000);
      expect(await store.claim('id', 'committed', 60_000, ['rollback'])).toBe('rollback');
      expect(await store.getTags('id')).toEqual(['rollback']);
    }
    const { rows } = await db.pool.query<{ name: string }>('SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 ORDER BY 1', [db.schema]);
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['we"ird', '$body$ x $body0$', 'tags; DROP TABLE users; --', 'Ünï 😀']));
  });

  it('says what is missing when setup() has not run', async () => {
    const store = storeOn('never_set_up');
    await expect(store.claim('a', 'rollback', 1_000, [])).rejects.toThrow(/has PostgresTagStore\.setup\(\) run for table "rrxc_test_tag_store_\w+"\."never_set_up"\?/);
    await expect(store.getTags('a')).rejects.toThrow(/setup\(\)/);
  });

  it('rejects IDs and tags with U+0000, which PostgreSQL cannot store', async () => {
    const store = storeOn(TABLE);
    await expect(store.tag('a\0b', 'rollback', 1_000)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.claim('a', 'rollback', 1_000, ['x\0'])).rejects.toThrow(/rival must be a string without U\+0000/);
    await expect(store.getTags('\0')).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('stores a TTL of 100 years or more as no expiry', async () => {
    const store = storeOn(TABLE);
    await store.tag('long', 'forever', 1e300);
    const { rows } = await db.pool.query(`SELECT tags, expires_at FROM "${db.schema}"."${TABLE}" WHERE id = 'long'`);
    expect(rows).toEqual([{ tags: { forever: 0 }, expires_at: Infinity }]);
    await emptyTable();
  });

  it('measures TTLs on the server clock: a tag lives its TTL, whatever this process thinks the time is', async () => {
    const store = storeOn(TABLE);
    // A year behind: a TTL measured on this process' clock would have ended long ago.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 365 * 24 * 3_600_000 });
    try {
      await store.tag('clock', 'rollback', 60_000);
    } finally {
      vi.useRealTimers();
    }
    expect(await store.getTags('clock')).toEqual(['rollback']);
    await emptyTable();
  });

  it('purges the rows whose every tag expired, and only those; the sweep does it by itself', async () => {
    const table = 'purged';
    await storeOn(table).setup();
    const store = storeOn(table, { purgeInterval: 40 });
    try {
      await store.tag('gone', 'rollback', 20);
      await store.tag('half', 'rollback', 20);
      await store.tag('half', 'committed', 60_000);
      await store.tag('never', 'rollback', 0);
      const ids = async (): Promise<string[]> =>
        (await db.pool.query<{ id: string }>(`SELECT id FROM "${db.schema}"."${table}" ORDER BY id`)).rows.map((r) => r.id);
      await vi.waitFor(async () => expect(await ids()).toEqual(['half', 'never']), { timeout: 2_000, interval: 20 });
      expect(await store.getTags('half')).toEqual(['committed']);
      await store.close(); // the sweep stops
      await store.tag('again', 'x', 10);
      await sleep(120); // three sweep intervals: a sweep still running would have purged it
      expect(await storeOn(table).purgeExpired()).toBe(1);
      expect(await ids()).toEqual(['half', 'never']);
    } finally {
      await store.close();
    }
  });

  it('closes a pool of its own, idempotently, and leaves a given one open', async () => {
    const own = new PostgresTagStore({ connectionString: db.url, schema: db.schema, table: TABLE });
    expect(await own.getTags('x')).toEqual([]);
    await Promise.all([own.close(), own.close()]);
    await expect(own.getTags('x')).rejects.toThrow();
    const given = storeOn(TABLE);
    await given.close();
    expect((await db.pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('within() needs a client', () => {
    const store = storeOn(TABLE);
    expect(() => store.within({} as pg.PoolClient)).toThrow(InvalidArgumentError);
    expect(() => store.within(undefined as unknown as pg.PoolClient)).toThrow(/within\(\) needs a pg client/);
  });
});
