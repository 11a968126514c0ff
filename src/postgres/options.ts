// The options of rrxc/postgres: their type, their defaults, and the one step
// that checks them, in the constructor, the way the other stores do.
import type { Pool, PoolConfig } from 'pg';
import { MAX_TIMEOUT } from '../clock.js';
import { InvalidArgumentError } from '../errors.js';
import { describe } from '../_describe.js';
import { checkOptionsObject, optionKeys } from '../_validate.js';

/** Default {@link PostgresTagStoreOptions.table}. */
export const DEFAULT_TABLE = 'rrxc_tags';
/** Default {@link PostgresTagStoreOptions.purgeInterval}: a minute. */
export const DEFAULT_PURGE_INTERVAL = 60_000;

/**
 * Options of {@link PostgresTagStore}. Give exactly one of `pool` and
 * `connectionString`; an unknown key is an error (it is usually a typo).
 * Every instance sharing the tags must name the same `schema` and `table`.
 */
export interface PostgresTagStoreOptions {
  /**
   * The `pg` pool the store runs its statements on, each on its own
   * (autocommit). It stays yours: {@link PostgresTagStore.close} leaves it
   * open. Never a client inside a transaction of yours: for that, use
   * {@link PostgresTagStore.within}.
   */
  pool?: Pool;
  /**
   * A PostgreSQL URL (`postgres://user@host:5432/db`) to connect to. The
   * store makes its own pool and {@link PostgresTagStore.close} ends it.
   */
  connectionString?: string;
  /** `pg` pool settings for the pool made from `connectionString` (its `connectionString` is the option's). */
  poolConfig?: Omit<PoolConfig, 'connectionString'>;
  /**
   * The table holding the tags, one row per tagged ID. The functions
   * {@link PostgresTagStore.setup} creates are named after it
   * (`<table>_claim`, …). Any name: it is quoted, never spliced into SQL
   * as it stands. At most 48 bytes in UTF-8, so that the names derived
   * from it stay within PostgreSQL's 63.
   * @defaultValue `"rrxc_tags"`
   */
  table?: string;
  /**
   * The schema of the table and its functions; quoted like `table`.
   * @defaultValue none: the first schema of the connection's `search_path` (usually `public`)
   */
  schema?: string;
  /**
   * Milliseconds between two sweeps that delete the rows whose every tag
   * has expired ({@link PostgresTagStore.purgeExpired}); `0`: never sweep
   * (call `purgeExpired()` yourself). Expired tags are ignored either way;
   * a sweep only frees their space. The timer does not keep the process
   * alive.
   * @defaultValue 60 000
   */
  purgeInterval?: number;
}

/** @internal {@link PostgresTagStoreOptions}, checked, with every default applied. */
export interface ResolvedPostgresOptions {
  readonly pool: Pool | undefined;
  readonly connectionString: string | undefined;
  readonly poolConfig: Omit<PoolConfig, 'connectionString'> | undefined;
  readonly table: string;
  readonly schema: string | undefined;
  readonly purgeInterval: number;
}

const KEYS = optionKeys<PostgresTagStoreOptions>({
  pool: true,
  connectionString: true,
  poolConfig: true,
  table: true,
  schema: true,
  purgeInterval: true,
});

/** Longest table name (documented): within PostgreSQL's 63 bytes once the longest suffix of a derived name (`_expires_at`, 11 bytes) is added, with 4 to spare. */
const MAX_TABLE_BYTES = 48;
/** PostgreSQL's longest identifier, in bytes (NAMEDATALEN − 1). */
const MAX_IDENTIFIER_BYTES = 63;

/**
 * @internal Checks the options of a {@link PostgresTagStore} and applies the defaults.
 * @throws {@link InvalidArgumentError} for the first option that is wrong.
 */
export function resolvePostgresOptions(options: PostgresTagStoreOptions): ResolvedPostgresOptions {
  const given = checkOptionsObject(options, 'PostgresTagStore options', KEYS);
  const { pool, connectionString, poolConfig } = given;
  if ((pool === undefined) === (connectionString === undefined)) {
    throw new InvalidArgumentError(
      `PostgresTagStore needs exactly one of \`pool\` (a pg Pool) and \`connectionString\`, got ${pool === undefined ? 'neither' : 'both'}`,
    );
  }
  if (pool !== undefined && typeof (pool as { query?: unknown } | null)?.query !== 'function') {
    throw new InvalidArgumentError(`pool must be a pg Pool (an object with a query method), got ${describe(pool)}`);
  }
  if (connectionString !== undefined && (typeof connectionString !== 'string' || connectionString === '')) {
    throw new InvalidArgumentError(`connectionString must be a non-empty string, got ${describe(connectionString)}`);
  }
  if (poolConfig !== undefined) {
    if (connectionString === undefined) throw new InvalidArgumentError('poolConfig is only accepted together with connectionString');
    if (typeof poolConfig !== 'object' || poolConfig === null) throw new InvalidArgumentError(`poolConfig must be an object, got ${describe(poolConfig)}`);
  }
  const purgeInterval = given.purgeInterval ?? DEFAULT_PURGE_INTERVAL;
  if (typeof purgeInterval !== 'number' || !Number.isInteger(purgeInterval) || purgeInterval < 0 || purgeInterval > MAX_TIMEOUT) {
    throw new InvalidArgumentError(`purgeInterval must be an integer number of milliseconds from 0 (never) to ${MAX_TIMEOUT}, got ${describe(purgeInterval)}`);
  }
  return {
    pool,
    connectionString,
    poolConfig,
    table: checkIdentifier('table', given.table ?? DEFAULT_TABLE, MAX_TABLE_BYTES),
    schema: given.schema === undefined ? undefined : checkIdentifier('schema', given.schema, MAX_IDENTIFIER_BYTES),
    purgeInterval,
  };
}

/** A name PostgreSQL keeps as given once quoted: non-empty, no NUL, at most `maxBytes` in UTF-8 (longer ones it would cut). */
function checkIdentifier(what: string, value: unknown, maxBytes: number): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0') || !value.isWellFormed() || Buffer.byteLength(value) > maxBytes) {
    throw new InvalidArgumentError(`${what} must be a non-empty name of at most ${maxBytes} bytes in UTF-8, without NUL, got ${describe(value)}`);
  }
  return value;
}
