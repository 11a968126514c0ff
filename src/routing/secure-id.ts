import { getRandomValues } from 'node:crypto';
import { urlAlphabet } from 'nanoid';

/** Length of every ID made here (after a backplane's prefix, if any). */
export const GENERATED_ID_LENGTH = 21;
const ID_LENGTH = GENERATED_ID_LENGTH;
/** Characters at the end of a slotted ID that name its slot, 6 bits each. */
const SLOT_CHARS = 4;
/** Slots a slotted ID can name. */
export const SLOTS = 1 << (6 * SLOT_CHARS);
/** Character code of each random byte: the byte's low 6 bits index nanoid's 64-character alphabet. */
const CODE_OF_BYTE = Uint8Array.from({ length: 256 }, (_, byte) => urlAlphabet.charCodeAt(byte & 63));
/** Index in the alphabet of each character code below 128; -1 for the others. */
const VALUE_OF_CODE = Int8Array.from({ length: 128 }, (_, code) => urlAlphabet.indexOf(String.fromCharCode(code)));
/** Random bytes for this many IDs are drawn from `crypto` at once. */
const POOL_IDS = 512;
/** Random bytes, already turned into character codes. */
const pool = new Uint8Array(ID_LENGTH * POOL_IDS);
let poolOffset = pool.length;

/** The offset in {@link pool} of `count` (at most 21) fresh random character codes. */
function take(count: number): number {
  if (poolOffset + count > pool.length) {
    getRandomValues(pool);
    for (let i = 0; i < pool.length; i++) pool[i] = CODE_OF_BYTE[pool[i]!]!;
    poolOffset = 0;
  }
  const offset = poolOffset;
  poolOffset = offset + count;
  return offset;
}

/**
 * A nanoid: 21 characters of nanoid's URL-safe alphabet (126 random bits
 * from `crypto`), as one flat string. `nanoid()` builds its string by 21
 * concatenations, a rope of garbage behind every ID, and hands each call a
 * fresh `Buffer` view of its pool; here the pool is turned into character
 * codes once per refill and each string made in one call with its 21 codes
 * as arguments (a spread costs half as much again) — about a third of
 * `nanoid()`'s time. Internal: also the random part of the Redis
 * backplane's instance-named IDs.
 */
export function secureId(): string {
  // Short names keep the 21 arguments readable.
  const p = pool;
  const o = take(ID_LENGTH);
  return String.fromCharCode(
    p[o]!, p[o + 1]!, p[o + 2]!, p[o + 3]!, p[o + 4]!, p[o + 5]!, p[o + 6]!, p[o + 7]!, p[o + 8]!, p[o + 9]!, p[o + 10]!,
    p[o + 11]!, p[o + 12]!, p[o + 13]!, p[o + 14]!, p[o + 15]!, p[o + 16]!, p[o + 17]!, p[o + 18]!, p[o + 19]!, p[o + 20]!,
  );
}

/**
 * An ID that looks like a nanoid — 21 characters of its alphabet — made of
 * 17 random ones (102 bits from `crypto`) and four that name `slot`
 * (below {@link SLOTS}), so that whoever holds the ID can find its slot
 * with {@link slotOf} instead of hashing it.
 */
export function slottedId(slot: number): string {
  const p = pool;
  const o = take(ID_LENGTH - SLOT_CHARS);
  const c = CODE_OF_BYTE;
  return String.fromCharCode(
    p[o]!, p[o + 1]!, p[o + 2]!, p[o + 3]!, p[o + 4]!, p[o + 5]!, p[o + 6]!, p[o + 7]!, p[o + 8]!, p[o + 9]!, p[o + 10]!,
    p[o + 11]!, p[o + 12]!, p[o + 13]!, p[o + 14]!, p[o + 15]!, p[o + 16]!,
    c[slot >>> 18]!, c[(slot >>> 12) & 63]!, c[(slot >>> 6) & 63]!, c[slot & 63]!,
  );
}

/**
 * The slot `id` names if it ends as a slotted ID does (whoever made it; a
 * backplane's instance prefix may come before), a negative number if not.
 * Any string of 21 characters or more whose last four are in the alphabet
 * names one: the slot's holder must still compare IDs.
 */
export function slotOf(id: string): number {
  const end = id.length;
  if (end < ID_LENGTH) return -1;
  const a = id.charCodeAt(end - 4);
  const b = id.charCodeAt(end - 3);
  const c = id.charCodeAt(end - 2);
  const d = id.charCodeAt(end - 1);
  if ((a | b | c | d) >= 128) return -1;
  // A character outside the alphabet reads -1, which sets the sign bit whatever it is shifted by.
  return (VALUE_OF_CODE[a]! << 18) | (VALUE_OF_CODE[b]! << 12) | (VALUE_OF_CODE[c]! << 6) | VALUE_OF_CODE[d]!;
}

/**
 * The 30 bits that the five characters of `id` from `at` stand for, as
 * alphabet indices — random bits, in an ID {@link slottedId} made; a
 * negative number if one of them is not in the alphabet.
 */
export function bitsAt(id: string, at: number): number {
  const a = id.charCodeAt(at);
  const b = id.charCodeAt(at + 1);
  const c = id.charCodeAt(at + 2);
  const d = id.charCodeAt(at + 3);
  const e = id.charCodeAt(at + 4);
  if ((a | b | c | d | e) >= 128) return -1;
  const v = VALUE_OF_CODE;
  return (v[a]! << 24) | (v[b]! << 18) | (v[c]! << 12) | (v[d]! << 6) | v[e]!;
}
