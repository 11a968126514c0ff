import { Redis } from 'ioredis';
import { Controller, type ControllerOptions } from '../../src/index.js';
import { RedisBackplane, type RedisBackplaneOptions } from '../../src/redis/index.js';
import { deleteKeys } from './redis-keys.js';
import { uniquePrefix } from './redis-server.js';

/** One instance of a service: a controller on its own Redis connections. */
export interface Instance {
  readonly controller: Controller<unknown, unknown>;
  readonly backplane: RedisBackplane;
}

/**
 * Instances that share one key prefix (one "service"), each with its own
 * connections, and everything `cleanup()` must close and delete.
 */
export class Cluster {
  readonly prefix: string;
  readonly admin: Redis;
  readonly #instances: Instance[] = [];

  constructor(
    readonly url: string,
    name: string,
  ) {
    this.prefix = uniquePrefix(name);
    this.admin = new Redis(url, { maxRetriesPerRequest: 1 });
    this.admin.on('error', () => undefined); // tests that stop Redis expect it to fail
  }

  async add(backplane: Partial<RedisBackplaneOptions> = {}, controller: ControllerOptions = {}): Promise<Instance> {
    const bp = await RedisBackplane.connect({ url: this.url, prefix: this.prefix, ...backplane });
    const instance: Instance = { backplane: bp, controller: new Controller({ backplane: bp, tagStore: bp.tagStore, ...controller }) };
    this.#instances.push(instance);
    return instance;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.#instances.map((i) => i.controller.close()));
    // Controllers never started (tests that fail early) still hold a backplane.
    await Promise.all(this.#instances.map((i) => i.backplane.close()));
    await deleteKeys(this.admin, this.prefix).catch(() => undefined);
    this.admin.disconnect();
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
