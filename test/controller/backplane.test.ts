import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { CHANNELS, Controller, MemoryTagStore, type Exchange, type TagStore } from '../../src/index.js';
import { clock, closeControllersAfterEach, controllers, make, resetClock } from '../helpers/controllers.js';
import { InProcessBackplane } from '../helpers/in-process-backplane.js';

closeControllersAfterEach();

describe('with a backplane', () => {
  function pair(): [Controller<string, string>, Controller<string, string>, InProcessBackplane, InProcessBackplane] {
    const planeA = new InProcessBackplane();
    const planeB = new InProcessBackplane();
    planeA.peers = [planeB];
    planeB.peers = [planeA];
    resetClock();
    const a = new Controller<string, string>({ backplane: planeA, clock });
    const b = new Controller<string, string>({ backplane: planeB, clock });
    controllers.push(a, b);
    return [a, b, planeA, planeB];
  }

  it("delivers a reply registered on B to A's exchange, and B gets A's outcome", async () => {
    const [a, b] = pair();
    const xc = a.createExchange();
    const handle = xc.registerRequest();
    expect(await b.registerResponse({ correlationId: handle.correlationId, message: 'via B' })).toBe('delivered');
    await expect(handle.response).resolves.toBe('via B');
    expect(await b.registerResponse({ correlationId: handle.correlationId, message: 'again' })).toBe('duplicate');
  });

  it('marks the owner\'s publication of a forwarded reply as forwarded, so each reply is counted once', async () => {
    const [a, b] = pair();
    const seen: [unknown, boolean][] = [];
    const listener = (message: unknown): void => {
      const { controller, forwarded } = message as { controller: unknown; forwarded?: true };
      seen.push([controller === a ? 'a' : 'b', forwarded === true]);
    };
    subscribe(CHANNELS.responseDelivered, listener);
    try {
      const { correlationId } = a.createExchange().registerRequest();
      expect(await b.registerResponse({ correlationId, message: 'via B' })).toBe('delivered');
      const local = a.createExchange().registerRequest();
      expect(await a.registerResponse({ correlationId: local.correlationId, message: 'here' })).toBe('delivered');
      expect(seen).toEqual([
        ['a', true],
        ['b', false],
        ['a', false],
      ]);
    } finally {
      unsubscribe(CHANNELS.responseDelivered, listener);
    }
  });

  it("answers a late reply on B with A's rolled-back, B never consulting its own tag store", async () => {
    const planeA = new InProcessBackplane();
    const planeB = new InProcessBackplane();
    planeA.peers = [planeB];
    planeB.peers = [planeA];
    let lookups = 0;
    const storeB = new MemoryTagStore();
    const countingStore: TagStore = {
      tag: (id, tag, ttl) => storeB.tag(id, tag, ttl),
      untag: (id, tag) => storeB.untag(id, tag),
      claim: (id, tag, ttl, rivals) => storeB.claim(id, tag, ttl, rivals),
      getTags: (id) => {
        lookups++;
        return storeB.getTags(id);
      },
    };
    const a = make({ backplane: planeA });
    const b = new Controller<string, string>({ backplane: planeB, tagStore: countingStore, clock });
    controllers.push(b);
    const xc = a.createExchange();
    const { correlationId } = xc.registerRequest();
    xc.close();
    expect(await b.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
    expect(lookups).toBe(0);
  });

  it("shows the backplane the controller's rollback settings", () => {
    const plane = new InProcessBackplane();
    make({ backplane: plane, rollbackTag: 'undo', rollbackTtl: 1_234, duplicateWindow: 99 });
    expect(plane.router).toMatchObject({ rollbackTag: 'undo', rollbackTtl: 1_234, duplicateWindow: 99 });
  });

  it('lets the backplane abandon every open exchange: aborted, tagged, the controller still open', async () => {
    const plane = new InProcessBackplane();
    const controller = make({ backplane: plane });
    const exchanges = [controller.createExchange(), controller.createExchange()];
    const ids = exchanges.map((xc) => xc.registerRequest().correlationId);
    const reason = new Error('lease lost');
    plane.router!.abandon(reason);
    for (const xc of exchanges) expect(await xc.wait()).toMatchObject({ status: 'aborted', reason });
    for (const id of ids) expect(await controller.isRolledBack(id)).toBe(true);
    expect(() => controller.createExchange()).not.toThrow();
  });

  it('abandons exchanges that a listener opens while the others are being abandoned, too', async () => {
    const plane = new InProcessBackplane();
    const controller = make({ backplane: plane });
    const first = controller.createExchange();
    first.registerRequest();
    let opened: Exchange<string, string> | undefined;
    const listener = (): void => {
      // Opened while abandon() is still ending the others: the next pass ends it.
      opened ??= controller.createExchange();
    };
    subscribe(CHANNELS.exchangeEnded, listener);
    try {
      plane.router!.abandon(new Error('lease lost'));
    } finally {
      unsubscribe(CHANNELS.exchangeEnded, listener);
    }
    expect([first.state, opened?.state, controller.openExchanges]).toEqual(['ended', 'ended', 0]);
  });

  it('routes a reply as late, not delivered, when the backplane says this instance is fenced', async () => {
    const plane = new InProcessBackplane();
    let fenced = false;
    Object.assign(plane, {
      checkLease(): boolean {
        if (fenced) plane.router!.abandon(new Error('lease lost'));
        return !fenced;
      },
    });
    const controller = make({ backplane: plane });
    const xc = controller.createExchange();
    const handle = xc.registerRequest();
    fenced = true;
    expect(await controller.registerResponse({ correlationId: handle.correlationId, message: 'too late' })).toBe('rolled-back');
    expect(await xc.wait()).toMatchObject({ status: 'aborted', unanswered: [handle.correlationId] });
  });

  it('answers unmatched when no instance owns the ID', async () => {
    const [, b] = pair();
    expect(await b.registerResponse({ correlationId: 'nobody', message: 'x' })).toBe('unmatched');
  });

  it('tells the backplane about registered and ended requests, and closes it', async () => {
    const [a, , planeA] = pair();
    const xc = a.createExchange();
    xc.registerRequest({ correlationId: 'r1' });
    xc.registerRequest({ correlationId: 'r2' });
    await a.registerResponse({ correlationId: 'r1', message: 'ok' });
    xc.close();
    expect(planeA.registered).toEqual(['r1', 'r2']);
    expect(planeA.ended).toEqual([[['r1'], ['r2']]]);
    await a.close();
    expect(planeA.closed).toBe(true);
  });
});
