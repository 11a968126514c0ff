/**
 * `rrxc/postgres` — tags in PostgreSQL ({@link PostgresTagStore}), whose
 * claim can run inside your own transaction: a worker claims "committed" for
 * a correlation ID in the transaction that holds its business writes, the
 * requester's end of exchange claims "rolled back", and exactly one of them
 * wins, atomically with the business data. Needs `pg` 8 (a peer dependency).
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { Controller } from 'rrxc';
 * import { PostgresTagStore } from 'rrxc/postgres';
 *
 * const pool = new pg.Pool({ connectionString: 'postgres://127.0.0.1:5432/app' });
 * const tagStore = new PostgresTagStore({ pool });
 * await tagStore.setup(); // table, index and functions, if not there yet
 * const controller = new Controller({ tagStore, timeout: 5_000 });
 * ```
 *
 * @packageDocumentation
 * @module rrxc/postgres
 */
export { PostgresTagStore } from './tag-store.js';
export { DEFAULT_PURGE_INTERVAL, DEFAULT_TABLE, type PostgresTagStoreOptions } from './options.js';
