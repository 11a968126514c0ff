import { afterEach, describe, expect, it } from 'vitest';
import { Controller, InvalidArgumentError } from '../../src/index.js';
import { RedisTagStore } from '../../src/redis/index.js';
import { redisForFile } from '../helpers/redis-for-file.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { uniquePrefix } from '../helpers/redis-server.js';

const redis = redisForFile();
let cleanup: (() => Promise<unknown>) | undefined;
afterEach(async () => cleanup?.());

// A lone surrogate has no UTF-8 form: Redis would store `order-\ud801` and
// `order-\udfff` under one key (both U+FFFD), and rolling back one would roll
// back the other. Such IDs are refused before any store sees them.
describe('IDs with a lone surrogate, against a Redis tag store', () => {
  it('are refused with InvalidArgumentError, so no two distinct IDs share a tag', async () => {
    const prefix = uniquePrefix('ill-formed');
    const controller = new Controller<string, string>({ tagStore: new RedisTagStore({ redis: redis.connection, prefix }) });
    cleanup = async () => {
      await controller.close();
      await deleteKeys(redis.connection, prefix);
    };
    const xc = controller.createExchange();
    expect(() => xc.registerRequest({ correlationId: 'order-\ud801' })).toThrow(InvalidArgumentError);
    await expect(controller.tag('order-\ud801', 'rollback')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(controller.registerResponse({ correlationId: 'order-\udfff', message: 'late' })).rejects.toThrow(/well-formed/);
    await expect(controller.isRolledBack('order-\udfff')).rejects.toBeInstanceOf(InvalidArgumentError);
    // Well-formed IDs outside the BMP are fine: a surrogate pair is one character of UTF-8.
    xc.registerRequest({ correlationId: 'order-\ud801\udc37' });
    xc.close();
    await xc.wait();
    expect(await controller.isRolledBack('order-\ud801\udc37')).toBe(true);
    expect(await controller.isRolledBack('order-\ud801\udc38')).toBe(false);
  });
});
