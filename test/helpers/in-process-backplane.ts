import type { Backplane, BackplaneRouter, ResponseOutcome } from '../../src/index.js';

/** Controllers in one process, joined the way a network backplane joins instances. */
export class InProcessBackplane implements Backplane {
  router: BackplaneRouter | undefined;
  peers: InProcessBackplane[] = [];
  registered: string[] = [];
  ended: [readonly string[], readonly string[]][] = [];
  closed = false;
  start(router: BackplaneRouter): void {
    this.router = router;
  }
  async forward(correlationId: string, message: unknown, overwrite: boolean): Promise<ResponseOutcome> {
    for (const peer of this.peers) {
      const outcome = await peer.router!.route(correlationId, message, overwrite);
      if (outcome !== 'unmatched') return outcome;
    }
    return 'unmatched';
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
}
