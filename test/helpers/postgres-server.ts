import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { customAlphabet } from 'nanoid';
import pg from 'pg';
import { freePort } from './redis-server.js';

/** A PostgreSQL the tests can reach; `stop()` stops it only if this helper started it. */
export interface TestPostgres {
  /** A connection string: `postgres://user@host:port/database`. */
  readonly url: string;
  stop(): Promise<void>;
}

/** The local server of the machines the project runs on: trust auth on 127.0.0.1, database `test`. */
const LOCAL_URL = 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The PostgreSQL for tests: `DATABASE_URL` if set, else the local
 * 127.0.0.1:5432 (database `test`, user `postgres`, trust auth) if it
 * accepts a connection, else a throwaway cluster of `initdb` and `postgres`
 * from PATH on a free port, removed again by `stop()`.
 */
export async function usePostgres(): Promise<TestPostgres> {
  const fromEnv = process.env['DATABASE_URL'];
  if (fromEnv) return { url: fromEnv, stop: async () => undefined };
  if (await accepts(LOCAL_URL)) return { url: LOCAL_URL, stop: async () => undefined };
  return startPostgresCluster();
}

/**
 * Starts a cluster of this test's own: `initdb` into a temporary folder
 * (trust auth, no fsync), `postgres` on a free loopback port.
 */
async function startPostgresCluster(): Promise<TestPostgres> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rrxc-pg-'));
  const data = join(dir, 'data');
  // PostgreSQL refuses to run as root: then it runs as the `postgres` user.
  const owner = userInfo().uid === 0 ? postgresUser() : undefined;
  if (owner !== undefined) chownSync(dir, owner.uid, owner.gid);
  const as = owner ?? {};
  const init = spawnSync('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { ...as, encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.error?.message ?? init.stderr}`);
  const settings = ['listen_addresses=127.0.0.1', `unix_socket_directories=${dir}`, 'fsync=off', 'max_connections=200'];
  const child: ChildProcess = spawn('postgres', ['-D', data, '-p', String(port), ...settings.flatMap((setting) => ['-c', setting])], { ...as, stdio: 'ignore' });
  const exited = once(child, 'exit');
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      // SIGINT: PostgreSQL's fast shutdown.
      child.kill('SIGINT');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  for (let i = 0; i < 200; i++) {
    if (await accepts(url)) return { url, stop };
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  await stop();
  throw new Error(`the PostgreSQL started on port ${port} did not accept connections`);
}

/** Whether the server at `url` accepts a connection and answers a query. */
async function accepts(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const lowerAlphanumeric = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 10);

/** A schema name no other test (or run) uses: `rrxc_test_<label>_<random>`. */
export function uniqueSchema(label: string): string {
  return `rrxc_test_${label.replace(/[^a-z0-9_]/g, '_')}_${lowerAlphanumeric()}`;
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string): number => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  if (!Number.isInteger(uid) || uid <= 0) throw new Error('running as root, and no `postgres` user to run PostgreSQL as');
  return { uid, gid: id('-g') };
}
