import pg from 'pg';
import type { ClientBase, Pool } from 'pg';
import type { TagStore } from '../adapters.js';
import { InvalidArgumentError } from '../errors.js';
import { describe } from '../_describe.js';
import { checkTtl } from '../_validate.js';
import { resolvePostgresOptions, type PostgresTagStoreOptions } from './options.js';
import { Sql } from './_sql.js';

/** What the store runs its statements on: a pool, or a client of the user's. */
interface Queryable {
  query(config: { text: string; values?: unknown[] }): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
}

/** Rows deleted by one statement of a sweep. */
const PURGE_BATCH = 10_000;

/** A TTL of this many ms (100 years) or more is stored as no expiry: the server's timestamps end, TTLs need not. */
const NEVER_AFTER = 100 * 365.25 * 24 * 60 * 60 * 1000;

/**
 * A {@link TagStore} in PostgreSQL, whose {@link PostgresTagStore.claim} can
 * run inside your own transaction ({@link PostgresTagStore.within}): a
 * worker records "committed" for a correlation ID in the same transaction
 * as its business writes, so the decision commits — or rolls back — with
 * them, and the requester's end of exchange, claiming "rolled back" on the
 * same ID, waits for that transaction and then sees its outcome. Exactly one
 * of the two wins, atomically with the business data.
 *
 * One row per tagged ID in `table` (one round trip per call, a PL/pgSQL
 * function for every write); expiry is computed from the database server's
 * clock (`clock_timestamp()`), so instances whose clocks disagree still agree
 * on what is live. Expired tags are ignored at once; a sweep every
 * `purgeInterval` deletes the rows whose every tag expired.
 *
 * Run {@link PostgresTagStore.setup} once (at start-up, or from your
 * migrations with {@link PostgresTagStore.setupSql}) before the first call.
 *
 * **Isolation.** Claims are made for READ COMMITTED, PostgreSQL's default:
 * a claim that meets a concurrent one waits for it and decides on its
 * outcome. Under REPEATABLE READ or SERIALIZABLE a transaction cannot see
 * what committed after its snapshot, and PostgreSQL fails such a claim with
 * `serialization_failure` (SQLSTATE `40001`) rather than let it decide
 * twice: retry the transaction, as any transaction at those levels must be.
 * IDs and tags cannot contain U+0000 (PostgreSQL's text cannot hold it): a
 * call with one rejects with `InvalidArgumentError` (from `rrxc`).
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { Controller } from 'rrxc';
 * import { PostgresTagStore } from 'rrxc/postgres';
 *
 * const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'] });
 * const tagStore = new PostgresTagStore({ pool, table: 'orders_rrxc_tags' });
 * await tagStore.setup();
 * const controller = new Controller({ tagStore, timeout: 5_000 });
 * ```
 */
export class PostgresTagStore implements TagStore {
  readonly #pool: Pool;
  readonly #owned: boolean;
  readonly #sql: Sql;
  readonly #on: Statements;
  readonly #sweeper: NodeJS.Timeout | undefined;
  #sweeping = false;
  #closed: Promise<void> | undefined;

  /**
   * Makes a store; it connects on its first statement. Call
   * {@link PostgresTagStore.setup} before the first tag.
   *
   * @param options - See {@link PostgresTagStoreOptions}.
   * @throws `InvalidArgumentError` (from `rrxc`) for bad options.
   */
  constructor(options: PostgresTagStoreOptions) {
    const resolved = resolvePostgresOptions(options);
    this.#owned = resolved.pool === undefined;
    this.#pool = resolved.pool ?? new pg.Pool({ ...resolved.poolConfig, connectionString: resolved.connectionString! });
    // An idle client of our own pool that loses its connection emits 'error' on the pool; the next query reconnects.
    if (this.#owned) this.#pool.on('error', ignore);
    this.#sql = new Sql(resolved.table, resolved.schema);
    this.#on = new Statements(this.#sql, this.#pool as unknown as Queryable, false);
    if (resolved.purgeInterval > 0) {
      this.#sweeper = setInterval(() => void this.#sweep(), resolved.purgeInterval);
      this.#sweeper.unref();
    }
  }

  /**
   * Creates the table, its index and its functions where they do not exist
   * yet (and replaces the functions with this version's): idempotent, and
   * safe to run from several processes at once (they take turns on an
   * advisory lock). One transaction: it all happens or none of it.
   */
  async setup(): Promise<void> {
    await this.#pool.query(this.#sql.setup);
  }

  /**
   * The SQL {@link PostgresTagStore.setup} runs, for a migration tool or a
   * DBA: one script of several statements, meant to run as one transaction.
   */
  setupSql(): string {
    return this.#sql.setup;
  }

  /**
   * The same store, bound to `client`: each call runs on that client,
   * inside whatever transaction it has open, so a claim commits or rolls
   * back with the rest of that transaction. While the transaction is open,
   * the claimed ID's row stays locked, and any other claim on that ID (the
   * requester's end of exchange) waits for the transaction to end.
   *
   * ```ts
   * const client = await pool.connect();
   * try {
   *   await client.query('BEGIN');
   *   await client.query('INSERT INTO orders (id, sku) VALUES ($1, $2)', [orderId, sku]);
   *   const won = (await store.within(client).claim(correlationId, 'committed', 3 * 60 * 60_000, ['rollback'])) === undefined;
   *   await client.query(won ? 'COMMIT' : 'ROLLBACK'); // lost: the requester already gave up
   * } finally {
   *   client.release();
   * }
   * ```
   *
   * Claim right before `COMMIT`: from the claim on, the requester's end of
   * exchange for that ID waits for this transaction, and one left open
   * longer than the controller's `storeTimeout` (5 s by default) makes the
   * ID `undecided` for the requester until a retried claim sees the outcome.
   *
   * The bound store has no `close()`: the client stays yours. Use it while
   * the client is checked out; keep the transaction READ COMMITTED (see the
   * class's notes on isolation).
   *
   * @param client - A `pg` client (`pg.Client`, or a `PoolClient` from `pool.connect()`), usually inside `BEGIN … COMMIT`.
   * @returns A {@link TagStore} on `client`, with this store's table.
   * @throws `InvalidArgumentError` (from `rrxc`) when `client` has no `query` method.
   */
  within(client: ClientBase): TagStore {
    if (typeof (client as { query?: unknown } | null)?.query !== 'function') {
      throw new InvalidArgumentError(`within() needs a pg client (an object with a query method), got ${describe(client)}`);
    }
    return new Statements(this.#sql, client as unknown as Queryable, true);
  }

  /**
   * Adds `tag` to `id` for `ttl` milliseconds; tagging again replaces the
   * TTL. `0` (and 100 years or more): no expiry.
   */
  tag(id: string, tag: string, ttl: number): Promise<void> {
    return this.#on.tag(id, tag, ttl);
  }

  /** Removes `tag` from `id`; resolves whether it was there and live. */
  untag(id: string, tag: string): Promise<boolean> {
    return this.#on.untag(id, tag);
  }

  /** The live (unexpired) tags of `id`, in any order. */
  getTags(id: string): Promise<readonly string[]> {
    return this.#on.getTags(id);
  }

  /**
   * Settles `id` once, in one statement on its own transaction: adds `tag`
   * unless `id` carries a live tag among `tag` and `rivals`. Waits while
   * another transaction holds the ID (a worker's claim not yet committed),
   * then decides on what that transaction left. TTLs as for
   * {@link PostgresTagStore.tag}. In a transaction of yours, claim through
   * {@link PostgresTagStore.within}.
   *
   * @returns `undefined` when this call added `tag`; otherwise the live tag that held the claim.
   */
  claim(id: string, tag: string, ttl: number, rivals: readonly string[]): Promise<string | undefined> {
    return this.#on.claim(id, tag, ttl, rivals);
  }

  /**
   * Deletes the rows whose every tag has expired, in batches of 10 000
   * (each its own short statement, skipping rows other transactions hold);
   * the sweep every `purgeInterval` calls it.
   *
   * @returns How many rows it deleted.
   */
  async purgeExpired(): Promise<number> {
    let deleted = 0;
    for (;;) {
      const { rowCount } = await this.#pool.query({ text: this.#sql.purge, values: [PURGE_BATCH] });
      deleted += rowCount ?? 0;
      if ((rowCount ?? 0) < PURGE_BATCH) return deleted;
    }
  }

  /**
   * Stops the sweep, and ends the pool made from `connectionString`; a pool
   * given as `pool` stays open. Tags stay in the table until they expire.
   * Idempotent.
   */
  close(): Promise<void> {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    return (this.#closed ??= this.#owned ? this.#pool.end() : Promise.resolve());
  }

  async #sweep(): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      await this.purgeExpired();
    } catch {
      // The next sweep tries again; expired tags are ignored meanwhile.
    } finally {
      this.#sweeping = false;
    }
  }
}

/** The TagStore methods on one queryable (the store's pool, or a client given to `within`). */
class Statements implements TagStore {
  readonly #sql: Sql;
  readonly #db: Queryable;
  /**
   * On a client (not a pool): the last statement issued, which the next
   * one waits for. A client runs one query at a time; pg 8 queues a second
   * one itself but deprecates doing so, so a bound store queues its own.
   */
  #last: Promise<unknown> | undefined;

  constructor(sql: Sql, db: Queryable, serial: boolean) {
    this.#sql = sql;
    this.#db = db;
    this.#last = serial ? Promise.resolve() : undefined;
  }

  async tag(id: string, tag: string, ttl: number): Promise<void> {
    await this.#run(this.#sql.tag, [text('id', id), text('tag', tag), storedTtl(ttl)]);
  }

  async untag(id: string, tag: string): Promise<boolean> {
    const rows = await this.#run(this.#sql.untag, [text('id', id), text('tag', tag)]);
    return rows[0]?.['removed'] === true;
  }

  async getTags(id: string): Promise<readonly string[]> {
    const rows = await this.#run(this.#sql.getTags, [text('id', id)]);
    return (rows[0]?.['tags'] as string[] | undefined) ?? [];
  }

  async claim(id: string, tag: string, ttl: number, rivals: readonly string[]): Promise<string | undefined> {
    const values = [text('id', id), text('tag', tag), storedTtl(ttl), rivals.map((rival) => text('rival', rival))];
    const rows = await this.#run(this.#sql.claim, values);
    return (rows[0]?.['held'] as string | null | undefined) ?? undefined;
  }

  async #run(statement: string, values: unknown[]): Promise<Record<string, unknown>[]> {
    let result: Promise<{ rows: Record<string, unknown>[] }>;
    if (this.#last === undefined) {
      result = this.#db.query({ text: statement, values });
    } else {
      result = this.#last.then(() => this.#db.query({ text: statement, values }));
      this.#last = result.catch(ignore);
    }
    try {
      return (await result).rows;
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      // undefined_function, undefined_table: the schema is not there.
      if (code === '42883' || code === '42P01') {
        throw new Error(`${(error as Error).message} (has PostgresTagStore.setup() run for table ${this.#sql.table}?)`, { cause: error });
      }
      throw error;
    }
  }
}

/** `value`, which PostgreSQL's text can hold: no U+0000. */
function text(what: string, value: string): string {
  if (typeof value !== 'string' || value.includes('\0')) {
    throw new InvalidArgumentError(`${what} must be a string without U+0000 (PostgreSQL's text cannot hold it), got ${describe(value)}`);
  }
  return value;
}

/** The TTL passed to the functions: ms, `0` for no expiry (also for 100 years and more). */
function storedTtl(ttl: number): number {
  checkTtl('ttl', ttl);
  return ttl >= NEVER_AFTER ? 0 : ttl;
}

function ignore(): void {
  // A pool's idle client lost its connection (the pool replaces it); a queued statement's failure (its caller sees it).
}
