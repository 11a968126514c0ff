// A backplane that records a forwarded reply before it is handed over
// (BackplaneRouter.route with `record`): what the exchange does meanwhile.
import { describe, expect, it } from 'vitest';
import { Controller, type ResponseOutcome } from '../../src/index.js';
import { InProcessBackplane } from '../helpers/in-process-backplane.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** A `record()` the test settles by hand, with how often it was called. */
function gate(): { record: () => Promise<ResponseOutcome | undefined>; settle: (refused?: ResponseOutcome) => void; fail: (error: unknown) => void; calls: () => number } {
  let calls = 0;
  let resolve!: (refused: ResponseOutcome | undefined) => void;
  let reject!: (error: unknown) => void;
  const recorded = new Promise<ResponseOutcome | undefined>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return {
    record: () => {
      calls++;
      return recorded;
    },
    settle: (refused) => resolve(refused),
    fail: (error) => reject(error),
    calls: () => calls,
  };
}

function setUp(): { controller: Controller<string, string>; backplane: InProcessBackplane; clock: ManualClock } {
  const clock = new ManualClock();
  const backplane = new InProcessBackplane({ idPrefix: 'a~' });
  const controller = new Controller<string, string>({ backplane, clock });
  return { controller, backplane, clock };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('a forwarded reply recorded before it is handed over', () => {
  it('reaches the exchange only once recorded, and a deadline that passes meanwhile waits for it: the reply came in time', async () => {
    const { controller, backplane, clock } = setUp();
    const xc = controller.createExchange({ timeout: 1_000 });
    const { correlationId, response } = xc.registerRequest({ message: 'q' });
    const ended = xc.wait();
    const recording = gate();
    const told = backplane.router!.route(correlationId, 'r', false, recording.record);
    clock.advance(2_000);
    await flush();
    expect(recording.calls()).toBe(1);
    expect(xc.state, 'the deadline waits for the held reply').not.toBe('ended');
    expect(xc.getResponse(correlationId)).toBeUndefined();
    recording.settle();
    expect(await told).toBe('delivered');
    expect(await response).toBe('r');
    const result = await ended;
    // Sealed by wait() and now answered in full: completed, as if handed over when it came.
    expect(result.status).toBe('completed');
    expect(result.unanswered).toEqual([]);
    expect(result.entries[0]!.response).toBe('r');
    await controller.close();
  });

  it('a copy that arrives while one is held is told what became of the held one', async () => {
    const { controller, backplane } = setUp();
    const xc = controller.createExchange({ timeout: 10_000 });
    const { correlationId } = xc.registerRequest();
    const recording = gate();
    const held = backplane.router!.route(correlationId, 'first', false, recording.record);
    const direct = controller.registerResponse({ correlationId, message: 'second' });
    const forwarded = gate();
    const alsoForwarded = backplane.router!.route(correlationId, 'third', false, forwarded.record);
    await flush();
    recording.settle();
    expect(await held).toBe('delivered');
    expect(await direct).toBe('duplicate');
    expect(await alsoForwarded).toBe('duplicate');
    expect(forwarded.calls(), 'a copy of an answered ID records nothing').toBe(0);
    expect(xc.getResponse(correlationId)).toBe('first');
    await controller.close();
  });

  it('refused (another instance rolled the ID back), the reply is not handed over, the request waits again, and a later copy is delivered', async () => {
    const { controller, backplane } = setUp();
    const xc = controller.createExchange({ timeout: 10_000 });
    const { correlationId } = xc.registerRequest();
    const refusing = gate();
    const told = backplane.router!.route(correlationId, 'r', false, refusing.record);
    refusing.settle('rolled-back');
    expect(await told).toBe('rolled-back');
    expect(xc.getResponse(correlationId)).toBeUndefined();
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('delivered');
    await controller.close();
  });

  it('a record() that throws rejects the route, and the request waits again', async () => {
    const { controller, backplane } = setUp();
    const xc = controller.createExchange({ timeout: 10_000 });
    const { correlationId } = xc.registerRequest();
    const failure = new Error('no connection');
    await expect(
      backplane.router!.route(correlationId, 'r', false, () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('delivered');
    await controller.close();
  });

  it('a copy waiting behind a hold is unmatched once the controller closed', async () => {
    const { controller, backplane } = setUp();
    const xc = controller.createExchange({ timeout: 10_000 });
    const { correlationId } = xc.registerRequest();
    const recording = gate();
    void backplane.router!.route(correlationId, 'first', false, recording.record);
    const waiting = backplane.router!.route(correlationId, 'second', false, gate().record);
    const closed = controller.close();
    recording.settle();
    expect(await waiting).toBe('unmatched');
    await closed;
    expect(xc.state).toBe('ended');
  });

  it('a record that fails rejects the route, and the request waits again', async () => {
    const { controller, backplane } = setUp();
    const xc = controller.createExchange({ timeout: 10_000 });
    const { correlationId } = xc.registerRequest();
    const failing = gate();
    const told = backplane.router!.route(correlationId, 'r', false, failing.record);
    const failure = new Error('Redis went away');
    failing.fail(failure);
    await expect(told).rejects.toBe(failure);
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('delivered');
    await controller.close();
  });

  it('an abort while the reply is held ends the exchange after it, as it was when the reply came', async () => {
    const { controller, backplane } = setUp();
    const abort = new AbortController();
    const xc = controller.createExchange({ signal: abort.signal, timeout: 10_000 });
    const { correlationId } = xc.registerRequest();
    xc.registerRequest(); // never answered
    const recording = gate();
    const told = backplane.router!.route(correlationId, 'r', false, recording.record);
    abort.abort(new Error('client went away'));
    expect(xc.state).not.toBe('ended');
    recording.settle();
    expect(await told).toBe('delivered');
    const result = await xc.wait();
    expect(result.status).toBe('aborted');
    expect(result.entries.map((e) => e.answered)).toEqual([true, false]);
    expect(result.unanswered).toHaveLength(1);
    await controller.close();
  });

  it('close() does not wait: the held ID is undecided, neither answered nor tagged, and what the record settles is the answer', async () => {
    const { controller, backplane } = setUp();
    const xc = controller.createExchange({ timeout: 10_000 });
    const { correlationId, response } = xc.registerRequest();
    const recording = gate();
    const told = backplane.router!.route(correlationId, 'r', false, recording.record);
    xc.close();
    expect(xc.state).toBe('ended');
    const result = await xc.wait();
    expect(result.undecided).toEqual([correlationId]);
    expect(result.unanswered).toEqual([]);
    expect(result.complete).toBe(false);
    await expect(response).rejects.toThrow(/ended \(closed\)/);
    expect(await controller.isRolledBack(correlationId)).toBe(false);
    recording.settle();
    expect(await told).toBe('delivered');
    expect(xc.getResponse(correlationId), 'an ended exchange takes no reply').toBeUndefined();
    // Recorded as delivered: another copy is a duplicate, here as in the backplane's store.
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('duplicate');
    await controller.close();
  });

  it('fencing does not wait either: the held ID is undecided', async () => {
    const { controller, backplane } = setUp();
    const xc = controller.createExchange({ timeout: 10_000 });
    const { correlationId } = xc.registerRequest();
    const recording = gate();
    void backplane.router!.route(correlationId, 'r', false, recording.record);
    backplane.router!.abandon(new Error('lease lost'));
    const result = await xc.wait();
    expect(result.status).toBe('aborted');
    expect(result.undecided).toEqual([correlationId]);
    recording.settle();
    await controller.close();
  });
});

describe('controller.request()', () => {
  it('resolves with its own reply when a subscriber registered a request of its own in the exchange first', async () => {
    const { subscribe, unsubscribe } = await import('node:diagnostics_channel');
    const { CHANNELS } = await import('../../src/index.js');
    const controller = new Controller<string, string>();
    const audits: string[] = [];
    const onCreated = (message: unknown): void => {
      const { exchange } = message as { exchange: { registerRequest(o: object): { correlationId: string } } };
      audits.push(exchange.registerRequest({ message: 'audit' }).correlationId);
    };
    subscribe(CHANNELS.exchangeCreated, onCreated);
    try {
      const answer = controller.request('job', (correlationId) => {
        for (const id of [...audits, correlationId]) void controller.registerResponse({ correlationId: id, message: id === correlationId ? 'JOB' : 'AUDIT' });
      });
      expect(await answer).toBe('JOB');
    } finally {
      unsubscribe(CHANNELS.exchangeCreated, onCreated);
      await controller.close();
    }
  });
});
