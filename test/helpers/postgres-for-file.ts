import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { uniqueSchema, usePostgres, type TestPostgres } from './postgres-server.js';

/** The PostgreSQL of one test file: a pool, and a schema of the file's own. */
export interface FilePostgres {
  readonly url: string;
  /** For setting up, checking and cleaning up; stores may share it. */
  readonly pool: pg.Pool;
  /** Created before the file's tests, dropped with everything in it after them. */
  readonly schema: string;
}

/**
 * Call at the top of a test file: finds (or starts) the test PostgreSQL
 * before the file's tests, connects a pool (of `max` clients) and creates a
 * schema no other file or run uses; drops that schema, ends the pool and
 * stops the server after them. The fields are there from `beforeAll` on.
 */
export function postgresForFile(label: string, max = 10): FilePostgres {
  let server: TestPostgres | undefined;
  let pool: pg.Pool | undefined;
  const schema = uniqueSchema(label);
  beforeAll(async () => {
    server = await usePostgres();
    pool = new pg.Pool({ connectionString: server.url, max });
    await pool.query(`CREATE SCHEMA "${schema}"`);
  }, 60_000);
  afterAll(async () => {
    await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool?.end();
    await server?.stop();
  });
  return {
    get url() {
      return server!.url;
    },
    get pool() {
      return pool!;
    },
    schema,
  };
}
