import { Redis } from 'ioredis';

export interface ReplyRingOptions {
  readonly url: string;
  /** The sorted set the instances meet in, the same on every instance. */
  readonly key: string;
  /** This instance's name on the backplane. */
  readonly instanceId: string;
  /** Where this instance consumes its replies: its own reply list or queue. */
  readonly replyTo: string;
  readonly log: (line: string) => void;
}

/** One instance in the ring. */
interface Member {
  readonly instanceId: string;
  readonly replyTo: string;
}

/** How often an instance says it is alive, in ms. */
const BEAT = 500;
/** An instance not heard of for this long is left out: its replies would reach nobody. */
const LIVENESS = 2_000;

/**
 * Where the answers to this instance's jobs go, so that a run of several
 * instances shows replies crossing every time rather than by chance: the
 * first job's answer goes to another instance's reply address, the second
 * comes back here, and so on alternately (the others in turn). The
 * receiving instance's backplane then forwards the reply to this one, which
 * waits for it, and logs it. Alone, every answer comes back here.
 *
 * The instances meet in a Redis sorted set, each member scored by when it
 * stops counting as alive; each instance renews its own every {@link BEAT}
 * ms and reads the others, on a connection of its own.
 */
export class ReplyRing {
  readonly #options: ReplyRingOptions;
  readonly #member: string;
  readonly #redis: Redis;
  #others: readonly Member[] = [];
  #sent = 0;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;
  #left = false;

  private constructor(options: ReplyRingOptions) {
    this.#options = options;
    this.#member = JSON.stringify([options.instanceId, options.replyTo]);
    this.#redis = new Redis(options.url, { maxRetriesPerRequest: 1, lazyConnect: true });
    this.#redis.on('error', () => undefined); // reported by #beat, once per outage
  }

  /** Joins the ring: resolves once this instance is in it and knows the others. */
  static async join(options: ReplyRingOptions): Promise<ReplyRing> {
    const ring = new ReplyRing(options);
    try {
      await ring.#redis.connect();
      await ring.#beat();
    } catch (error) {
      ring.#redis.disconnect();
      throw error;
    }
    ring.#timer = setInterval(() => void ring.#beat().catch(() => undefined), BEAT);
    return ring;
  }

  /** The other live instances, as this one last saw them. */
  get others(): readonly string[] {
    return this.#others.map((m) => m.instanceId);
  }

  /** Where the answer to the next job goes: another instance's reply address every other time, starting now. */
  next(): string {
    const others = this.#others;
    const n = this.#sent++;
    if (others.length === 0 || n % 2 === 1) return this.#options.replyTo;
    return others[(n / 2) % others.length]!.replyTo;
  }

  /** Leaves the ring, so the others stop sending here, and disconnects. */
  async leave(): Promise<void> {
    if (this.#left) return;
    this.#left = true;
    clearInterval(this.#timer);
    await this.#redis.zrem(this.#options.key, this.#member).catch(() => undefined);
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  async #beat(): Promise<void> {
    const { key, instanceId, log } = this.#options;
    const now = Date.now();
    let members: string[];
    try {
      const replies = await this.#redis.multi().zadd(key, now + LIVENESS, this.#member).zremrangebyscore(key, '-inf', now).zrange(key, 0, -1).exec();
      members = (replies?.[2]?.[1] as string[] | undefined) ?? [];
      this.#failing = false;
    } catch (error) {
      if (!this.#failing && !this.#left) log(`reply ring: ${error instanceof Error ? error.message : String(error)}`);
      this.#failing = true;
      throw error;
    }
    const others = members
      .map((member) => JSON.parse(member) as [string, string])
      .filter(([id]) => id !== instanceId)
      .map(([id, replyTo]) => ({ instanceId: id, replyTo }));
    const before = this.others.join(', ');
    this.#others = others;
    const after = this.others.join(', ');
    if (after === before || this.#left) return;
    log(
      after === ''
        ? `instance ${instanceId}: alone, every answer comes back here`
        : `instance ${instanceId}: every other answer (the first, the third, …) goes to another instance (${after}), which forwards it here through the backplane`,
    );
  }
}
