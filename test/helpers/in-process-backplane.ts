import type { Backplane, BackplaneRouter, ResponseOutcome, TagStore } from '../../src/index.js';

/** Options of {@link InProcessBackplane}. */
export interface InProcessBackplaneOptions {
  /** Put before the IDs this instance's controller generates. */
  idPrefix?: string;
  /** The tag store the instances share: it decides a reply no live instance owns. */
  tags?: TagStore;
}

/**
 * Controllers in one process, joined the way a network backplane joins
 * instances: a reply is offered to each open peer in turn. It records what
 * its controller told it, and `loseLease()` makes it fence like a backplane
 * whose claim lapsed.
 */
export class InProcessBackplane implements Backplane {
  router: BackplaneRouter | undefined;
  peers: InProcessBackplane[] = [];
  registered: string[] = [];
  ended: [readonly string[], readonly string[]][] = [];
  closed = false;
  readonly idPrefix?: string;
  readonly #tags: TagStore | undefined;
  #leaseLost = false;

  constructor(options: InProcessBackplaneOptions = {}) {
    if (options.idPrefix !== undefined) this.idPrefix = options.idPrefix;
    this.#tags = options.tags;
  }

  /** Joins `planes` to each other: each one's peers are all the others. */
  static join(planes: readonly InProcessBackplane[]): void {
    for (const plane of planes) plane.peers = planes.filter((peer) => peer !== plane);
  }

  start(router: BackplaneRouter): void {
    this.router = router;
  }
  async forward(correlationId: string, message: unknown, overwrite: boolean): Promise<ResponseOutcome> {
    for (const peer of this.peers) {
      if (peer.closed) continue;
      const outcome = await peer.router!.route(correlationId, message, overwrite);
      if (outcome !== 'unmatched') return outcome;
    }
    // No live instance owns it: its rollback tag, if the instances share their tags, decides.
    const tags = this.#tags === undefined ? [] : await this.#tags.getTags(correlationId);
    return tags.includes(this.router!.rollbackTag) ? 'rolled-back' : 'unmatched';
  }
  close(): void {
    this.closed = true;
  }
  requestRegistered(correlationId: string): void {
    this.registered.push(correlationId);
  }
  requestsEnded(answered: readonly string[], unanswered: readonly string[]): void {
    this.ended.push([answered, unanswered]);
  }

  /** From now on this instance has lost its claim: checkLease() fences. */
  loseLease(): void {
    this.#leaseLost = true;
  }
  checkLease(): boolean {
    if (!this.#leaseLost) return true;
    this.router!.abandon(new Error('lease lost'));
    return false;
  }
}
