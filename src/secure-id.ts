import { getRandomValues } from 'node:crypto';
import { urlAlphabet } from 'nanoid';

const ID_LENGTH = 21;
/** Character code of each random byte: the byte's low 6 bits index nanoid's 64-character alphabet. */
const CODE_OF_BYTE = Uint8Array.from({ length: 256 }, (_, byte) => urlAlphabet.charCodeAt(byte & 63));
/** Random bytes for this many IDs are drawn from `crypto` at once. */
const POOL_IDS = 512;
/** Random bytes, already turned into character codes. */
const pool = new Uint8Array(ID_LENGTH * POOL_IDS);
let poolOffset = pool.length;

/**
 * A nanoid: 21 characters of nanoid's URL-safe alphabet (126 random bits
 * from `crypto`), as one flat string. `nanoid()` builds its string by 21
 * concatenations, a rope of garbage behind every ID, and hands each call a
 * fresh `Buffer` view of its pool; here the pool is turned into character
 * codes once per refill and each string made in one call with its 21 codes
 * as arguments (a spread costs half as much again) — about a third of
 * `nanoid()`'s time, on the path of every registered request. Internal:
 * also the random part of the Redis backplane's instance-named IDs.
 */
export function secureId(): string {
  if (poolOffset === pool.length) {
    getRandomValues(pool);
    for (let i = 0; i < pool.length; i++) pool[i] = CODE_OF_BYTE[pool[i]!]!;
    poolOffset = 0;
  }
  // Short names keep the 21 arguments readable.
  const p = pool;
  const o = poolOffset;
  poolOffset = o + ID_LENGTH;
  return String.fromCharCode(
    p[o]!, p[o + 1]!, p[o + 2]!, p[o + 3]!, p[o + 4]!, p[o + 5]!, p[o + 6]!, p[o + 7]!, p[o + 8]!, p[o + 9]!, p[o + 10]!,
    p[o + 11]!, p[o + 12]!, p[o + 13]!, p[o + 14]!, p[o + 15]!, p[o + 16]!, p[o + 17]!, p[o + 18]!, p[o + 19]!, p[o + 20]!,
  );
}
