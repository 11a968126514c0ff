import type { Redis } from 'ioredis';

/** Every key under `prefix` (SCAN: fine for the few keys of one test). */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/** Deletes every key under `prefix`, so that test runs leave nothing behind. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  const keys = await keysUnder(redis, prefix);
  if (keys.length > 0) await redis.del(...keys);
}

/**
 * What an owner's answered hashes record, by generated ID (`<answered at>`,
 * or `<answered at> <from> <seq>` for a forward it delivered): read from
 * every one of them, not found by the owner's own bucket arithmetic.
 */
export async function answeredRecords(redis: Redis, prefix: string, owner: string): Promise<Map<string, string>> {
  const records = new Map<string, string>();
  for (const key of await keysUnder(redis, `${prefix}a:{${owner}}:`)) {
    for (const [id, record] of Object.entries(await redis.hgetall(key))) records.set(id, record);
  }
  return records;
}
