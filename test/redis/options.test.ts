import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, MAX_TIMEOUT } from '../../src/index.js';
import { RedisBackplane, RedisTagStore } from '../../src/redis/index.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { uniquePrefix, useRedis, type TestRedis } from '../helpers/redis-server.js';

let server: TestRedis;
let admin: Redis;
const prefix = uniquePrefix('options');

beforeAll(async () => {
  server = await useRedis();
  admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await deleteKeys(admin, prefix);
  admin.disconnect();
  await server.stop();
});

const TIMER_OPTIONS = ['forwardTimeout', 'retryInterval', 'leaseTtl', 'deadlineGrace', 'commandTimeout', 'connectTimeout'] as const;

describe('RedisBackplane options', () => {
  it.each(TIMER_OPTIONS)('rejects %s above the longest timer Node can hold, and takes it at that limit', async (name) => {
    await expect(RedisBackplane.connect({ url: server.url, prefix, [name]: MAX_TIMEOUT + 1 })).rejects.toThrow(InvalidArgumentError);
    await expect(RedisBackplane.connect({ url: server.url, prefix, [name]: MAX_TIMEOUT + 1 })).rejects.toThrow(new RegExp(`${name} must be .* at most ${MAX_TIMEOUT}`));
    const backplane = await RedisBackplane.connect({ url: server.url, prefix, [name]: MAX_TIMEOUT });
    await backplane.close();
  });

  it('rejects commandTimeout: 2**31 as an option rather than failing connect() at once on a timer that fires after 1 ms', async () => {
    const error = await RedisBackplane.connect({ url: server.url, prefix, commandTimeout: 2 ** 31 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
  });

  it('takes a maxTtl beyond the longest timer (it is a Redis TTL), but not one Redis cannot be given as an integer', async () => {
    expect(() => new RedisBackplane({ url: server.url, prefix, maxTtl: 1e17 })).toThrow(InvalidArgumentError);
    const maxTtl = 4 * MAX_TIMEOUT;
    const backplane = await RedisBackplane.connect({ url: server.url, prefix, maxTtl });
    try {
      await backplane.tagStore.tag('maxttl-backplane', 'rollback', 0);
      expect(await admin.pttl(`${prefix}t:{maxttl-backplane}`)).toBeGreaterThan(maxTtl - 60_000);
    } finally {
      await backplane.close();
    }
  });

  it('rejects a clock or a codec that lacks a method, naming what is missing', () => {
    expect(() => new RedisBackplane({ url: server.url, prefix, clock: { now: Date.now } } as never)).toThrow(/clock must have the methods now, setTimeout, clearTimeout; missing: setTimeout, clearTimeout/);
    expect(() => new RedisBackplane({ url: server.url, prefix, codec: { encode: String } } as never)).toThrow(/codec must have the methods encode, decode; missing: decode/);
    expect(() => new RedisTagStore({ url: server.url, prefix, clock: {} } as never)).toThrow(InvalidArgumentError);
  });

  it('rejects a misspelled option, naming it', () => {
    expect(() => new RedisBackplane({ url: server.url, prefix, forwardTimout: 10 } as never)).toThrow(InvalidArgumentError);
    expect(() => new RedisBackplane({ url: server.url, prefix, forwardTimout: 10 } as never)).toThrow(/unknown option `forwardTimout` in RedisBackplane options/);
  });

  it('keeps its own message for the settings it now takes from its controller', () => {
    for (const moved of ['rollbackTag', 'rollbackTtl', 'duplicateWindow']) {
      expect(() => new RedisBackplane({ url: server.url, [moved]: 1 } as never)).toThrow(new RegExp(`${moved} is no longer a RedisBackplane option`));
    }
  });

  it('rejects options that are not an object', () => {
    expect(() => new RedisBackplane(42 as never)).toThrow(InvalidArgumentError);
    expect(() => new RedisBackplane(undefined as never)).toThrow(/exactly one of `redis`/);
  });
});

describe('RedisTagStore options', () => {
  it('rejects connectTimeout above the longest timer Node can hold', () => {
    expect(() => new RedisTagStore({ redis: admin, connectTimeout: 2 ** 31 })).toThrow(InvalidArgumentError);
    expect(() => new RedisTagStore({ redis: admin, connectTimeout: 2 ** 31 })).toThrow(/connectTimeout must be .* at most 2147483647/);
  });

  it('takes a maxTtl beyond the longest timer (it is a Redis TTL), but not one Redis cannot be given as an integer', async () => {
    expect(() => new RedisTagStore({ redis: admin, maxTtl: 1e17 })).toThrow(InvalidArgumentError);
    const maxTtl = 4 * MAX_TIMEOUT;
    const store = new RedisTagStore({ redis: admin, prefix, maxTtl });
    await store.tag('maxttl-store', 'rollback', 0);
    expect(await admin.pttl(`${prefix}t:{maxttl-store}`)).toBeGreaterThan(maxTtl - 60_000);
  });

  it('rejects a misspelled option, naming it', () => {
    expect(() => new RedisTagStore({ redis: admin, maxTTL: 5 } as never)).toThrow(InvalidArgumentError);
    expect(() => new RedisTagStore({ redis: admin, maxTTL: 5 } as never)).toThrow(/unknown option `maxTTL` in RedisTagStore options/);
  });
});
