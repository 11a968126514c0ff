import { InvalidArgumentError } from '../errors.js';
import { describe } from '../_describe.js';

/** Default key prefix of every key and channel rrxc/redis writes. */
export const DEFAULT_PREFIX = 'rrxc:';

/**
 * Key names. The correlation ID sits in a `{…}` hash tag, so that an ID's
 * tag hash and its ownership record share a Redis Cluster slot and one Lua
 * script may touch both.
 */
export class Keys {
  constructor(readonly prefix: string) {}

  /** Hash of the tags of `id`. */
  tags(id: string): string {
    return `${this.prefix}t:{${id}}`;
  }

  /** Ownership record of `id`. */
  record(id: string): string {
    return `${this.prefix}o:{${id}}`;
  }

  /** Liveness (lease) key of an instance; in the instance's slot, with its sets. */
  lease(instanceId: string): string {
    return `${this.prefix}live:{${instanceId}}`;
  }

  /** Sorted set of the pending IDs an instance generated. */
  pending(instanceId: string): string {
    return `${this.prefix}p:{${instanceId}}`;
  }

  /** Sorted set of the generated IDs an instance answered within the duplicate window. */
  answered(instanceId: string): string {
    return `${this.prefix}a:{${instanceId}}`;
  }

  /** Pub/sub channel an instance listens on. */
  channel(instanceId: string): string {
    return `${this.prefix}in:${instanceId}`;
  }
}

/** Checks a key prefix: a string without braces (they would break the Cluster hash tags). */
export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw new InvalidArgumentError(`prefix must be a string without \`{\` or \`}\`, got ${describe(prefix)}`);
  }
  return prefix;
}
