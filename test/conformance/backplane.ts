import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CHANNELS,
  Controller,
  ExchangeEndedError,
  type Backplane,
  type BackplaneRouter,
  type ControllerOptions,
  type ResponseOutcome,
  type TagStore,
} from '../../src/index.js';

/** What an implementation gives {@link describeBackplane}: instances joined to each other. */
export interface BackplaneCluster {
  /** One backplane per instance, connected to the others and not started: each goes to one controller. */
  readonly backplanes: readonly Backplane[];
  /** The tag store of instance `index`'s controller: rollback tags must outlive their owner, so the instances share them. */
  readonly tagStore: (index: number) => TagStore;
  /**
   * Resolves once what the instances registered is known to the others, for
   * a backplane that records ownership in the background (IDs the
   * application chose). Default: at once.
   */
  readonly settle?: () => Promise<void>;
  /**
   * Makes instance `index` lose its claim on its IDs, as after a partition:
   * its next `checkLease()` must fence. Without it the fencing case is skipped.
   */
  readonly loseLease?: (index: number) => void | Promise<void>;
  /** Releases what the cluster holds; called after every controller (and so every backplane) closed. */
  readonly cleanup?: () => Promise<void>;
  /**
   * Sockets the cluster's fixture itself holds open until `cleanup` — the
   * connections an application gave its backplanes, which their close()
   * must leave alone. Default: none.
   */
  readonly givenSockets?: number;
}

/**
 * The Backplane contract (the table on `Backplane` in src/adapters.ts), as
 * one suite every implementation must pass, checked through real
 * controllers: `describeBackplane('RedisBackplane', (size) => …)`. Each test
 * asks the factory for a fresh cluster of `size` instances.
 */
export function describeBackplane(name: string, makeCluster: (size: number) => Promise<BackplaneCluster>): void {
  describe(`Backplane conformance: ${name}`, () => {
    const running: { cluster: BackplaneCluster; instances: Instance[] }[] = [];
    const published: Published[] = [];
    const listeners = RESPONSE_CHANNELS.map((channel) => {
      const listener = (message: unknown): void => void published.push(message as Published);
      return [channel, listener] as const;
    });

    /** A cluster of `size` instances, each a controller on its backplane, torn down after the test. */
    async function connect(size: number, options: ControllerOptions = {}): Promise<{ cluster: BackplaneCluster; instances: Instance[] }> {
      const cluster = await makeCluster(size);
      const instances = cluster.backplanes.map((backplane, index): Instance => {
        const plane = new Recorder(backplane);
        const controller = new Controller({ ...options, backplane: plane, tagStore: cluster.tagStore(index) });
        plane.openExchanges = () => controller.openExchanges;
        return { controller, plane };
      });
      running.push({ cluster, instances });
      return { cluster, instances };
    }

    /** The outcomes `instance`'s controller published for `correlationId`, in order. */
    function outcomesAt(instance: Instance, correlationId: string): ResponseOutcome[] {
      return published.filter((m) => m.controller === instance.controller && m.correlationId === correlationId).map((m) => m.outcome);
    }

    beforeEach(() => {
      for (const [channel, listener] of listeners) subscribe(channel, listener);
    });

    afterEach(async () => {
      for (const [channel, listener] of listeners) unsubscribe(channel, listener);
      published.length = 0;
      for (const { cluster, instances } of running.splice(0)) {
        await Promise.all(instances.map(({ controller }) => controller.close()));
        await cluster.cleanup?.();
        // The notifications are on the registration path: they must not throw.
        for (const { plane } of instances) expect(plane.thrown).toEqual([]);
      }
    });

    it("delivers at the owner, exactly once, a reply that reached another instance, and answers the owner's outcome", async () => {
      const { instances } = await connect(3);
      const handles = instances.map(({ controller }) => controller.createExchange().registerRequest());
      for (const [i, owner] of instances.entries()) {
        const via = instances[(i + 1) % instances.length]!;
        const { correlationId, response } = handles[i]!;
        expect(await via.controller.registerResponse({ correlationId, message: `for ${i}` })).toBe('delivered');
        await expect(response).resolves.toBe(`for ${i}`);
        expect(outcomesAt(owner, correlationId)).toEqual(['delivered']);
        expect(outcomesAt(via, correlationId)).toEqual(['delivered']);
        for (const other of instances) if (other !== owner && other !== via) expect(outcomesAt(other, correlationId)).not.toContain('delivered');
      }
    });

    it('answers duplicate for a second copy, from any instance, keeping the first reply', async () => {
      const { instances } = await connect(3);
      const [a, b, c] = instances as [Instance, Instance, Instance];
      const xc = a.controller.createExchange();
      const { correlationId } = xc.registerRequest();
      xc.registerRequest(); // keeps the exchange open
      const copies = await Promise.all([b, c].map((via) => via.controller.registerResponse({ correlationId, message: via === b ? 'b' : 'c' })));
      expect([...copies].sort()).toEqual(['delivered', 'duplicate']);
      const first = copies[0] === 'delivered' ? 'b' : 'c';
      expect(xc.getResponse(correlationId)).toBe(first);
      for (const via of [a, b, c]) expect(await via.controller.registerResponse({ correlationId, message: 'again' })).toBe('duplicate');
      expect(xc.getResponse(correlationId)).toBe(first);
      expect(outcomesAt(a, correlationId).filter((o) => o === 'delivered')).toHaveLength(1);
    });

    it('answers duplicate for a copy that arrives after the owner exchange completed', async () => {
      const { instances } = await connect(2);
      const [a, b] = instances as [Instance, Instance];
      const xc = a.controller.createExchange();
      const { correlationId } = xc.registerRequest();
      expect(await b.controller.registerResponse({ correlationId, message: 'once' })).toBe('delivered');
      expect((await xc.wait()).status).toBe('completed');
      expect(await b.controller.registerResponse({ correlationId, message: 'again' })).toBe('duplicate');
    });

    it('forwards overwrite: a copy with overwrite: true replaces the reply at the owner and answers overwritten', async () => {
      const { instances } = await connect(2);
      const [a, b] = instances as [Instance, Instance];
      const xc = a.controller.createExchange();
      const { correlationId } = xc.registerRequest();
      xc.registerRequest();
      expect(await b.controller.registerResponse({ correlationId, message: 'first' })).toBe('delivered');
      expect(await b.controller.registerResponse({ correlationId, message: 'second', overwrite: true })).toBe('overwritten');
      expect(xc.getResponse(correlationId)).toBe('second');
      expect(outcomesAt(a, correlationId)).toEqual(['delivered', 'overwritten']);
    });

    it('delivers at the owner a reply to an ID the application chose', async () => {
      const { cluster, instances } = await connect(2);
      const [a, b] = instances as [Instance, Instance];
      const correlationId = uniqueId('chosen');
      const { response } = a.controller.createExchange().registerRequest({ correlationId });
      await cluster.settle?.();
      expect(await b.controller.registerResponse({ correlationId, message: 'paid' })).toBe('delivered');
      await expect(response).resolves.toBe('paid');
    });

    it('answers rolled-back, at the owner and elsewhere, for a reply to an ID its exchange left unanswered', async () => {
      const { cluster, instances } = await connect(3);
      const [a, b, c] = instances as [Instance, Instance, Instance];
      const xc = a.controller.createExchange();
      const generated = xc.registerRequest();
      const chosen = xc.registerRequest({ correlationId: uniqueId('unanswered') });
      await cluster.settle?.();
      xc.close();
      await expect(generated.response).rejects.toBeInstanceOf(ExchangeEndedError);
      expect((await xc.wait()).unanswered).toEqual([generated.correlationId, chosen.correlationId]);
      for (const { correlationId } of [generated, chosen]) {
        for (const via of [b, c, a]) expect(await via.controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
      }
    });

    it('answers rolled-back for an unanswered ID of an owner that has closed', async () => {
      const { instances } = await connect(2);
      const [a, b] = instances as [Instance, Instance];
      const { correlationId } = a.controller.createExchange().registerRequest();
      await a.controller.close();
      expect(await b.controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
    });

    it('answers unmatched for an ID no instance registered', async () => {
      const { instances } = await connect(2);
      const [a, b] = instances as [Instance, Instance];
      // One the application might choose, and one in the shape of a generated ID of instance a.
      const ids = [uniqueId('nobody'), `${a.plane.idPrefix ?? ''}${uniqueId('never')}`];
      for (const correlationId of ids) {
        for (const via of [b, a]) expect(await via.controller.registerResponse({ correlationId, message: 'stray' })).toBe('unmatched');
      }
    });

    it('has its idPrefix, one per instance, put before every ID the controller generates', async () => {
      const { instances } = await connect(2);
      const prefixes = instances.map(({ plane }) => plane.idPrefix ?? '');
      if (!prefixes.includes('')) expect(new Set(prefixes).size).toBe(instances.length);
      for (const [i, { controller }] of instances.entries()) {
        for (const id of [controller.newCorrelationId(), controller.createExchange().registerRequest().correlationId]) {
          expect(id.startsWith(prefixes[i]!), id).toBe(true);
          expect(id.slice(prefixes[i]!.length)).toMatch(/^[\w-]{21}$/);
        }
      }
    });

    it("leaves IDs of the controller's newId as they are", async () => {
      const { instances } = await connect(1, { newId: () => uniqueId('own') });
      const [a] = instances as [Instance];
      expect(a.controller.newCorrelationId()).toMatch(/^own-/);
      expect(a.controller.createExchange().registerRequest().correlationId).toMatch(/^own-/);
    });

    it('is told of every request registered, with its exchange deadline, and of every exchange end, answered and unanswered apart', async () => {
      const { cluster, instances } = await connect(2);
      const [a, b] = instances as [Instance, Instance];
      const timed = a.controller.createExchange({ timeout: 60_000 });
      const answered = timed.registerRequest().correlationId;
      const chosen = timed.registerRequest({ correlationId: uniqueId('told') }).correlationId;
      const untimed = a.controller.createExchange({ timeout: Infinity });
      const open = untimed.registerRequest().correlationId;
      expect(a.plane.registered).toEqual([
        [answered, timed.deadline],
        [chosen, timed.deadline],
        [open, undefined],
      ]);
      await cluster.settle?.();
      expect(await b.controller.registerResponse({ correlationId: answered, message: 'ok' })).toBe('delivered');
      timed.close();
      untimed.close();
      expect(a.plane.ended).toEqual([
        [[answered], [chosen]],
        [[], [open]],
      ]);
      // The instance that only forwarded was told nothing of a's requests.
      expect([b.plane.registered, b.plane.ended]).toEqual([[], []]);
    });

    it("is closed once by the controller's close(), after every exchange ended, and no longer receives replies", async () => {
      const before = resources();
      const { cluster, instances } = await connect(2);
      // The application's own connections stay open: they are not the backplanes' to close.
      before.set('TCPSocketWrap', (before.get('TCPSocketWrap') ?? 0) + (cluster.givenSockets ?? 0));
      const [a, b] = instances as [Instance, Instance];
      const { correlationId } = a.controller.createExchange().registerRequest();
      await Promise.all([a.controller.close(), a.controller.close()]);
      expect([a.plane.closes, a.plane.openAtClose]).toEqual([1, 0]);
      const routed = a.plane.routed.length;
      expect(await b.controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
      expect(a.plane.routed).toHaveLength(routed);
      await b.controller.close();
      // Released: no socket or timer of the backplanes outlives their close().
      await until(() => resourcesLeft(before).length === 0);
      expect(resourcesLeft(before)).toEqual([]);
    });

    it('ends the exchanges of an instance that lost its lease before checkLease() answers false, and routes the reply as late', async (context) => {
      const { cluster, instances } = await connect(2);
      if (cluster.loseLease === undefined) return context.skip('this backplane cannot be made to lose its lease');
      const [a, b] = instances as [Instance, Instance];
      const first = a.controller.createExchange();
      const handle = first.registerRequest();
      const second = a.controller.createExchange();
      second.registerRequest();
      await cluster.loseLease(0);
      expect(await a.controller.registerResponse({ correlationId: handle.correlationId, message: 'too late' })).toBe('rolled-back');
      expect(a.plane.leases.filter(({ answer }) => !answer)).not.toEqual([]);
      // Whenever it answered false, the exchanges were already ended.
      for (const { answer, openExchanges } of a.plane.leases) if (!answer) expect(openExchanges).toBe(0);
      await expect(handle.response).rejects.toBeInstanceOf(ExchangeEndedError);
      for (const xc of [first, second]) expect((await xc.wait()).status).toBe('aborted');
      expect((await first.wait()).unanswered).toEqual([handle.correlationId]);
      expect(await b.controller.registerResponse({ correlationId: handle.correlationId, message: 'later' })).toBe('rolled-back');
    });
  });
}

/** One instance under test: its controller, and its backplane behind a recorder. */
interface Instance {
  readonly controller: Controller<unknown, unknown>;
  readonly plane: Recorder;
}

interface Published {
  readonly controller: unknown;
  readonly correlationId: string;
  readonly outcome: ResponseOutcome;
}

const RESPONSE_CHANNELS = [
  CHANNELS.responseDelivered,
  CHANNELS.responseDuplicate,
  CHANNELS.responseOverwritten,
  CHANNELS.responseRolledBack,
  CHANNELS.responseUnmatched,
];

/**
 * A backplane in front of the one under test, recording what the controller
 * asks of it and what reaches its router. It has an optional member exactly
 * when the backplane under test has it, so the controller sees the same shape.
 */
class Recorder implements Backplane {
  /** Reads the controller's open exchanges, once there is a controller. */
  openExchanges: () => number = () => 0;
  readonly registered: [string, number | undefined][] = [];
  readonly ended: [readonly string[], readonly string[]][] = [];
  /** IDs of the replies that reached this instance's router. */
  readonly routed: string[] = [];
  /** Each `checkLease()` answer, and how many exchanges were still open when it was given. */
  readonly leases: { answer: boolean; openExchanges: number }[] = [];
  /** What a notification threw. */
  readonly thrown: unknown[] = [];
  closes = 0;
  openAtClose: number | undefined;
  readonly idPrefix?: string;
  readonly requestRegistered?: (correlationId: string, deadline: number | undefined) => void;
  readonly requestsEnded?: (answered: readonly string[], unanswered: readonly string[]) => void;
  readonly checkLease?: () => boolean;

  constructor(readonly inner: Backplane) {
    const { idPrefix } = inner;
    if (idPrefix !== undefined) this.idPrefix = idPrefix;
    if (inner.requestRegistered !== undefined) {
      this.requestRegistered = (correlationId, deadline) => {
        this.registered.push([correlationId, deadline]);
        this.#notify(() => inner.requestRegistered!(correlationId, deadline));
      };
    }
    if (inner.requestsEnded !== undefined) {
      this.requestsEnded = (answered, unanswered) => {
        this.ended.push([[...answered], [...unanswered]]);
        this.#notify(() => inner.requestsEnded!(answered, unanswered));
      };
    }
    if (inner.checkLease !== undefined) {
      this.checkLease = () => {
        const answer = inner.checkLease!();
        this.leases.push({ answer, openExchanges: this.openExchanges() });
        return answer;
      };
    }
  }

  start(router: BackplaneRouter): void {
    this.inner.start({
      rollbackTag: router.rollbackTag,
      committedTag: router.committedTag,
      rollbackTtl: router.rollbackTtl,
      duplicateWindow: router.duplicateWindow,
      route: (correlationId, message, overwrite) => {
        this.routed.push(correlationId);
        return router.route(correlationId, message, overwrite);
      },
      abandon: (reason) => router.abandon(reason),
    });
  }

  forward(correlationId: string, message: unknown, overwrite: boolean): Promise<ResponseOutcome> {
    return this.inner.forward(correlationId, message, overwrite);
  }

  async close(): Promise<void> {
    this.closes++;
    this.openAtClose = this.openExchanges();
    await this.inner.close();
  }

  #notify(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.thrown.push(error);
      throw error;
    }
  }
}

let seq = 0;
/** An ID no other test (or run) uses: the cluster may share its storage with others. */
function uniqueId(label: string): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${++seq}`;
}

const TRACKED = new Set(['TCPSocketWrap', 'TCPWRAP', 'Timeout', 'PipeWrap']);

/** Counts of the sockets and timers this process holds. */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) if (TRACKED.has(kind)) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** The kinds of which more are held now than in `before`. */
function resourcesLeft(before: Map<string, number>): string[] {
  return [...resources()].filter(([kind, count]) => count > (before.get(kind) ?? 0)).map(([kind]) => kind);
}

/** Waits, up to a second, for `done()`: a socket closes a moment after its client says it is closed. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !done(); i++) await sleep(20);
}
