import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { useRedis, type TestRedis } from './redis-server.js';

/** The Redis of one test file, and a connection to it for setting up and cleaning up. */
export interface FileRedis {
  readonly url: string;
  readonly connection: Redis;
}

/**
 * Call at the top of a test file: finds (or starts) the test Redis before
 * the file's tests and connects to it; quits and stops it after them. The
 * fields are there from `beforeAll` on.
 */
export function redisForFile(): FileRedis {
  let server: TestRedis | undefined;
  let connection: Redis | undefined;
  beforeAll(async () => {
    server = await useRedis();
    connection = new Redis(server.url);
  });
  afterAll(async () => {
    await connection?.quit();
    await server?.stop();
  });
  return {
    get url() {
      return server!.url;
    },
    get connection() {
      return connection!;
    },
  };
}
