/**
 * Key and channel names. Redis Cluster puts a key in the hash slot of the
 * part of its name inside `{…}` (its hash tag): a correlation ID's tag hash
 * and its ownership key share the hash tag `{<id>}`, and an instance's
 * lease, pending set and answered hashes the hash tag `{<instanceId>}`, so that one Lua script may
 * touch each group.
 */
export class Keys {
  constructor(readonly prefix: string) {}

  /** Hash of the tags of `id`. */
  tags(id: string): string {
    return `${this.prefix}t:{${id}}`;
  }

  /** Who owns `id`, an ID the application chose, and whether it was answered. */
  ownership(id: string): string {
    return `${this.prefix}o:{${id}}`;
  }

  /** Liveness (lease) key of an instance. */
  lease(instanceId: string): string {
    return `${this.prefix}live:{${instanceId}}`;
  }

  /** Sorted set of the pending IDs an instance generated. */
  pending(instanceId: string): string {
    return `${this.prefix}p:{${instanceId}}`;
  }

  /** Head of the names of the hashes (one per span of time, `<head>:<n>`) of the generated IDs an instance answered lately. */
  answered(instanceId: string): string {
    return `${this.prefix}a:{${instanceId}}`;
  }

  /** How an instance's answered hashes are laid out (`<width> <keep>`, ms): how others find its records. */
  answeredLayout(instanceId: string): string {
    return `${this.prefix}al:{${instanceId}}`;
  }

  /** Pub/sub channel an instance listens on. */
  channel(instanceId: string): string {
    return `${this.prefix}in:${instanceId}`;
  }
}
