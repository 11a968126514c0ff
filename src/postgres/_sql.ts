// The SQL of rrxc/postgres: the schema setup() creates, and the statements
// each TagStore method runs. Every name is quoted; nothing a user gives is
// spliced into SQL unquoted.
//
// One row per tagged ID: `tags` is a JSON object, tag → expiry in ms since
// the epoch by the server's clock (`0`: never), and `expires_at` is when its
// last tag expires (`infinity`: never), for the sweep. Every write locks the
// ID's row (SELECT … FOR UPDATE, or the unique index while inserting it), so
// writes to one ID are serialised by PostgreSQL itself: a claim made in a
// transaction that has not ended yet holds the row until it commits or
// rolls back, and a concurrent claim waits for it, then decides on what it
// finds. Under READ COMMITTED each statement of a PL/pgSQL function reads a
// new snapshot, so the waiter sees the other's outcome; under REPEATABLE
// READ and SERIALIZABLE it cannot, and PostgreSQL raises serialization_failure
// (40001) instead (a locked row changed, or an insert met a row its
// snapshot does not show): a claim fails rather than deciding twice.
import { createHash } from 'node:crypto';

/** `"name"`, with every `"` doubled: a PostgreSQL identifier that means exactly `name`. */
function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The server's time in ms since the epoch, read at each call (clock_timestamp, not the transaction's start). */
const NOW_MS = 'extract(epoch FROM clock_timestamp()) * 1000';

/** Whether the stored expiry `value` (a jsonb number, `0`: never) is live at `now`. */
const isLive = (value: string, now: string): string => `(${value}::float8 = 0 OR ${value}::float8 > ${now})`;

/** The tags of `tags` still live at `now`. */
const liveTags = (tags: string, now: string): string =>
  `(SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb) FROM jsonb_each(${tags}) WHERE ${isLive('value', now)})`;

/** When the last tag of (non-empty) `tags` expires: `infinity` if one never does. */
const rowExpiry = (tags: string): string =>
  `(SELECT CASE WHEN min(value::float8) = 0 THEN 'infinity'::timestamptz ELSE to_timestamp(max(value::float8) / 1000) END FROM jsonb_each(${tags}))`;

/** The stored expiry of a tag put at `now` with TTL `ttl` ms (`0`: never). */
const expiryAt = (ttl: string, now: string): string => `to_jsonb(CASE WHEN ${ttl} = 0 THEN 0 ELSE ${now} + ${ttl} END)`;

/** Every statement of one table's store, built once. */
export class Sql {
  /** The table, schema-qualified when a schema was given: what the messages name. */
  readonly table: string;
  readonly setup: string;
  readonly tag: string;
  readonly untag: string;
  readonly getTags: string;
  readonly claim: string;
  readonly purge: string;

  constructor(table: string, schema: string | undefined) {
    const qualify = (name: string): string => (schema === undefined ? quoteIdent(name) : `${quoteIdent(schema)}.${quoteIdent(name)}`);
    const t = qualify(table);
    const fn = (verb: string): string => qualify(`${table}_${verb}`);
    this.table = t;

    this.tag = `SELECT ${fn('tag')}($1::text, $2::text, $3::float8)`;
    this.untag = `SELECT ${fn('untag')}($1::text, $2::text) AS removed`;
    this.claim = `SELECT ${fn('claim')}($1::text, $2::text, $3::float8, $4::text[]) AS held`;
    this.getTags = `SELECT coalesce(array_agg(key), '{}') AS tags FROM ${t} r CROSS JOIN LATERAL jsonb_each(r.tags) WHERE r.id = $1::text AND ${isLive('value', NOW_MS)}`;
    // SKIP LOCKED: a sweep never waits for (or holds up) a transaction that
    // is deciding on one of the rows; it takes them next time.
    this.purge = `DELETE FROM ${t} WHERE id IN (SELECT id FROM ${t} WHERE expires_at < clock_timestamp() LIMIT $1::int FOR UPDATE SKIP LOCKED)`;

    /** `p_tag` with its expiry: what a write adds to the ID's tags. */
    const newTag = `jsonb_build_object(p_tag, ${expiryAt('p_ttl', 'v_now')})`;
    /** Writes `v_tags` (non-empty) back to the locked row of `p_id`. */
    const store = `UPDATE ${t} SET tags = v_tags, expires_at = ${rowExpiry('v_tags')} WHERE id = p_id;`;
    /**
     * The loop of a write that adds `p_tag` to `p_id`, then runs `done`
     * (a RETURN): locks the ID's row, runs `check` on its tags (which may
     * return first), and stores the live ones of `kept` with `p_tag`; or
     * else inserts the row with `p_tag` alone. Should another transaction
     * insert the row meanwhile, the INSERT waits for it, and the loop locks
     * that row and decides again.
     */
    const lockOrInsert = (check: string, kept: string, done: string): string => `  LOOP
    SELECT tags INTO v_tags FROM ${t} WHERE id = p_id FOR UPDATE;
    IF FOUND THEN
      v_now := ${NOW_MS};
${check}      v_tags := ${liveTags(kept, 'v_now')} || ${newTag};
      ${store}
      ${done}
    END IF;
    v_now := ${NOW_MS};
    v_tags := ${newTag};
    INSERT INTO ${t} (id, tags, expires_at) VALUES (p_id, v_tags, ${rowExpiry('v_tags')}) ON CONFLICT (id) DO NOTHING;
    IF FOUND THEN
      ${done}
    END IF;
    -- Another transaction inserted the row after this one looked, and
    -- committed (the INSERT waited for it): lock that row, decide again.
  END LOOP;`;

    const functions = [
      plpgsql(
        `CREATE OR REPLACE FUNCTION ${fn('claim')}(p_id text, p_tag text, p_ttl float8, p_rivals text[]) RETURNS text`,
        `DECLARE
  v_tags jsonb;
  v_now float8;
  v_held text;
BEGIN
${lockOrInsert(
  `      SELECT key INTO v_held FROM jsonb_each(v_tags)
        WHERE (key = p_tag OR key = ANY (p_rivals)) AND ${isLive('value', 'v_now')}
        ORDER BY key = p_tag DESC LIMIT 1;
      IF FOUND THEN
        RETURN v_held;
      END IF;
`,
  'v_tags',
  'RETURN NULL;',
)}
END`,
      ),
      plpgsql(
        `CREATE OR REPLACE FUNCTION ${fn('tag')}(p_id text, p_tag text, p_ttl float8) RETURNS void`,
        `DECLARE
  v_tags jsonb;
  v_now float8;
BEGIN
${lockOrInsert('', 'v_tags - p_tag', 'RETURN;')}
END`,
      ),
      plpgsql(
        `CREATE OR REPLACE FUNCTION ${fn('untag')}(p_id text, p_tag text) RETURNS boolean`,
        `DECLARE
  v_tags jsonb;
  v_now float8;
  v_removed boolean;
BEGIN
  SELECT tags INTO v_tags FROM ${t} WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  v_now := ${NOW_MS};
  v_removed := coalesce(${isLive('(v_tags -> p_tag)', 'v_now')}, false);
  v_tags := ${liveTags('v_tags - p_tag', 'v_now')};
  IF v_tags = '{}'::jsonb THEN
    DELETE FROM ${t} WHERE id = p_id;
  ELSE
    ${store}
  END IF;
  RETURN v_removed;
END`,
      ),
    ];

    const statements = [
      // Quiet: "already exists, skipping" is the normal case.
      `SET LOCAL client_min_messages = warning`,
      // Serialises concurrent setups of one table: two CREATE TABLE IF NOT
      // EXISTS (or CREATE OR REPLACE FUNCTION) racing can fail on the catalog.
      `SELECT pg_advisory_xact_lock(${lockKey(`rrxc setup ${t}`)})`,
      `CREATE TABLE IF NOT EXISTS ${t} (
  id text PRIMARY KEY,
  tags jsonb NOT NULL,
  expires_at timestamptz NOT NULL
)`,
      `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${table}_expires_at`)} ON ${t} (expires_at)`,
      ...functions,
      `COMMENT ON TABLE ${t} IS 'rrxc tags (rrxc/postgres PostgresTagStore): tags maps each tag to its expiry in ms since the epoch (0: never); expires_at is when the last one expires'`,
    ];
    // One simple query: PostgreSQL runs its statements as one transaction.
    this.setup = `${statements.join(';\n')};`;
  }
}

/**
 * `header`, then `body` as a PL/pgSQL function body quoted with a dollar tag
 * that the body does not contain: the table's name is in it, and a name may
 * hold `$body$`.
 */
function plpgsql(header: string, body: string): string {
  let tag = '$body$';
  for (let i = 0; body.includes(tag); i++) tag = `$body${i}$`;
  return `${header}\nLANGUAGE plpgsql VOLATILE AS ${tag}\n${body}\n${tag}`;
}

/** A 64-bit advisory lock key for `name`, as a SQL integer literal. */
function lockKey(name: string): string {
  return BigInt.asIntN(64, createHash('sha256').update(name).digest().readBigUInt64BE(0)).toString();
}
