import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Controller,
  CorrelationIdConflictError,
  ExchangeEndedError,
  ExchangeSealedError,
  InvalidArgumentError,
  type Exchange,
  type ExchangeResult,
} from '../src/index.js';
import { flush, GatedTagStore } from './helpers/gated-tag-store.js';
import { ManualClock } from './helpers/manual-clock.js';

let clock: ManualClock;
let controller: Controller<string, string>;

function setup(options: ConstructorParameters<typeof Controller<string, string>>[0] = {}): Controller<string, string> {
  clock = new ManualClock();
  controller = new Controller<string, string>({ clock, ...options });
  return controller;
}

afterEach(async () => {
  await controller.close();
  expect(clock.pending).toBe(0);
});

describe('registering requests', () => {
  it('generates a unique 21-character correlation ID when none is given', () => {
    const xc = setup().createExchange();
    const a = xc.registerRequest();
    const b = xc.registerRequest();
    expect(a.correlationId).toMatch(/^[\w-]{21}$/);
    expect(a.correlationId).not.toBe(b.correlationId);
    expect(controller.hasRequest(a.correlationId)).toBe(true);
  });

  it('reports how long a request has been waiting, on the exchange and the controller', () => {
    const xc = setup().createExchange();
    xc.registerRequest({ correlationId: 'aging' });
    clock.advance(250);
    expect(xc.requestAge('aging')).toBe(250);
    expect(controller.requestAge('aging')).toBe(250);
    expect(xc.requestAge('unknown')).toBeUndefined();
  });

  it('hands out fresh IDs from exchange.newCorrelationId() that registerRequest accepts', () => {
    const xc = setup().createExchange();
    const id = xc.newCorrelationId();
    expect(controller.hasRequest(id)).toBe(false);
    expect(xc.registerRequest({ correlationId: id }).correlationId).toBe(id);
    expect(xc.newCorrelationId()).not.toBe(id);
  });

  it('keeps the request message for getRequest() and the result', async () => {
    const xc = setup().createExchange();
    xc.registerRequest({ correlationId: 'job-1', message: 'add 1 2' });
    expect(xc.getRequest('job-1')).toBe('add 1 2');
    await controller.registerResponse({ correlationId: 'job-1', message: '3' });
    const result = await xc.wait();
    expect(result.entries[0]).toMatchObject({ correlationId: 'job-1', request: 'add 1 2', response: '3', answered: true });
  });

  it('throws CorrelationIdConflictError for an ID pending in another exchange of the controller', () => {
    setup();
    controller.createExchange().registerRequest({ correlationId: 'same' });
    const other = controller.createExchange();
    const error = catchError(() => other.registerRequest({ correlationId: 'same' }));
    expect(error).toBeInstanceOf(CorrelationIdConflictError);
    expect(error).toMatchObject({ code: 'ERR_RRXC_CORRELATION_ID_CONFLICT', correlationId: 'same' });
    expect(other.hasRequest('same')).toBe(false);
  });

  it('refuses a given ID that a generated one already holds, and leaves the pending request routed to its owner', async () => {
    setup();
    const owner = controller.createExchange();
    const { correlationId } = owner.registerRequest({ message: 'first' });
    const other = controller.createExchange();
    expect(() => other.registerRequest({ correlationId, message: 'second' })).toThrow(CorrelationIdConflictError);
    expect(controller.pendingRequests).toBe(1);
    expect(await controller.registerResponse({ correlationId, message: 'answer' })).toBe('delivered');
    expect(owner.getResponse(correlationId)).toBe('answer');
  });

  it('accepts an ID again once the exchange that held it ended', async () => {
    setup();
    const first = controller.createExchange();
    first.registerRequest({ correlationId: 'reused' });
    first.close();
    const second = controller.createExchange();
    const handle = second.registerRequest({ correlationId: 'reused' });
    expect(await controller.registerResponse({ correlationId: 'reused', message: 'fresh' })).toBe('delivered');
    await expect(handle.response).resolves.toBe('fresh');
  });

  it('throws ExchangeSealedError after wait() sealed the exchange', () => {
    const xc = setup().createExchange();
    xc.registerRequest();
    void xc.wait();
    expect(xc.state).toBe('sealed');
    const error = catchError(() => xc.registerRequest());
    expect(error).toBeInstanceOf(ExchangeSealedError);
    expect(error).toMatchObject({ code: 'ERR_RRXC_EXCHANGE_SEALED', exchangeId: xc.id });
  });

  it('throws ExchangeEndedError carrying status and reason after the exchange ended', () => {
    const xc = setup().createExchange();
    const reason = new Error('client went away');
    xc.close(reason);
    const error = catchError(() => xc.registerRequest());
    expect(error).toBeInstanceOf(ExchangeEndedError);
    expect(error).toMatchObject({ code: 'ERR_RRXC_EXCHANGE_ENDED', status: 'closed', cause: reason });
  });

  it.each([
    ['a number', 42],
    ['an empty string', ''],
    ['a 257-character string', 'x'.repeat(257)],
    ['null', null],
  ])('rejects %s as correlation ID with InvalidArgumentError and leaves the index untouched', (_, id) => {
    const xc = setup().createExchange();
    const error = catchError(() => xc.registerRequest({ correlationId: id as string }));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ code: 'ERR_RRXC_INVALID_ARGUMENT' });
    expect((error as Error).message).toMatch(/correlationId must be a non-empty string of at most 256 characters, well-formed \(no lone surrogate\), got/);
    expect(controller.pendingRequests).toBe(0);
  });

  it.each(['__proto__', 'constructor', 'hasOwnProperty', 'toString'])('routes the ID %j like any other', async (id) => {
    const xc = setup().createExchange();
    const handle = xc.registerRequest({ correlationId: id });
    expect(controller.getExchange(id)).toBe(xc);
    expect(await controller.registerResponse({ correlationId: id, message: 'ok' })).toBe('delivered');
    await expect(handle.response).resolves.toBe('ok');
  });
});

describe('wait()', () => {
  it('completes at once for an exchange with no requests', async () => {
    const xc = setup().createExchange();
    const result = await xc.wait();
    expect(result).toMatchObject({ status: 'completed', complete: true, entries: [], unanswered: [] });
    expect(xc.state).toBe('ended');
  });

  it('counts replies that came before wait()', async () => {
    const xc = setup().createExchange();
    const { correlationId } = xc.registerRequest();
    expect(await controller.registerResponse({ correlationId, message: 'early' })).toBe('delivered');
    expect(xc.state).toBe('open');
    const result = await xc.wait();
    expect(result.status).toBe('completed');
    expect(result.entries[0]?.response).toBe('early');
  });

  it('resolves when the last of several replies arrives, with entries in registration order', async () => {
    const xc = setup().createExchange();
    const ids = ['a', 'b', 'c'].map((correlationId) => xc.registerRequest({ correlationId }).correlationId);
    const waiting = xc.wait();
    clock.advance(5);
    await controller.registerResponse({ correlationId: 'c', message: 'C' });
    await controller.registerResponse({ correlationId: 'a', message: 'A' });
    expect(xc.state).toBe('sealed');
    clock.advance(7);
    await controller.registerResponse({ correlationId: 'b', message: 'B' });
    const result = await waiting;
    expect(result.entries.map((e) => e.correlationId)).toEqual(ids);
    expect(result.entries.map((e) => e.response)).toEqual(['A', 'B', 'C']);
    expect(result.entries[1]).toMatchObject({ latencyMs: 12, respondedAt: result.entries[1]!.requestedAt + 12 });
    expect(result.durationMs).toBe(12);
  });

  it('reports every time as clock time: created, requested, responded, ended', async () => {
    setup();
    const t0 = clock.now();
    const xc = controller.createExchange();
    clock.advance(5);
    xc.registerRequest({ correlationId: 'timed' });
    clock.advance(7);
    await controller.registerResponse({ correlationId: 'timed', message: 'ok' });
    clock.advance(3);
    const seen = [];
    for await (const entry of xc.responses()) {
      seen.push(entry);
      break;
    }
    const result = await xc.wait();
    expect(result).toMatchObject({ createdAt: t0, endedAt: t0 + 15, durationMs: 15 });
    expect(result.entries[0]).toMatchObject({ requestedAt: t0 + 5, respondedAt: t0 + 12, latencyMs: 7 });
    expect(seen[0]).toEqual(result.entries[0]);
  });

  it('gives results and entries as plain objects, equal to literals even strictly, with reason only when there is one', async () => {
    setup();
    const t0 = clock.now();
    const xc = controller.createExchange({ id: 'plain' });
    xc.registerRequest({ correlationId: 'answered', message: 'q1' });
    xc.registerRequest({ correlationId: 'missed', message: 'q2' });
    await controller.registerResponse({ correlationId: 'answered', message: 'a1' });
    xc.close('stop');
    const result = await xc.wait();
    expect(result).toStrictEqual({
      exchangeId: 'plain',
      status: 'closed',
      complete: false,
      reason: 'stop',
      createdAt: t0,
      endedAt: t0,
      durationMs: 0,
      entries: [
        { correlationId: 'answered', request: 'q1', response: 'a1', answered: true, requestedAt: t0, respondedAt: t0, latencyMs: 0 },
        { correlationId: 'missed', request: 'q2', answered: false, requestedAt: t0 },
      ],
      unanswered: ['missed'],
      committed: [],
      undecided: [],
    });
    for (const value of [result, ...result.entries]) expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    const completed = controller.createExchange();
    const done = await completed.wait();
    expect(Object.keys(done)).toEqual(['exchangeId', 'status', 'complete', 'createdAt', 'endedAt', 'durationMs', 'entries', 'unanswered', 'committed', 'undecided']);
  });

  it('reports the exchange ID as result.exchangeId, for a generated and a given ID', async () => {
    setup();
    // id is not read before the end: a generated one is made on first read, and the result must still carry it.
    const generated = controller.createExchange();
    const given = controller.createExchange({ id: 'order-7' });
    const [a, b] = await Promise.all([generated.wait(), given.wait()]);
    expect(a.exchangeId).toBe(generated.id);
    expect(a.exchangeId).toMatch(/^[\w-]+-\w+$/);
    expect(b.exchangeId).toBe('order-7');
    expect(b.exchangeId).toBe(given.id);
  });

  it('returns the same promise when called twice', () => {
    const xc = setup().createExchange();
    xc.registerRequest();
    expect(xc.wait()).toBe(xc.wait());
  });

  it('resolves rather than rejects when the timeout fires, tagging unanswered IDs', async () => {
    const xc = setup({ timeout: 1_000 }).createExchange();
    const answered = xc.registerRequest({ correlationId: 'fast' });
    xc.registerRequest({ correlationId: 'slow' });
    await controller.registerResponse({ correlationId: answered.correlationId, message: 'ok' });
    const waiting = xc.wait();
    clock.advance(1_000);
    const result = await waiting;
    expect(result).toMatchObject({ status: 'timed-out', complete: false, unanswered: ['slow'] });
    expect('reason' in result).toBe(false);
    expect(await controller.isRolledBack('slow')).toBe(true);
    expect(await controller.isRolledBack('fast')).toBe(false);
  });

  it('uses the per-exchange timeout over the controller default', async () => {
    const xc = setup({ timeout: 10_000 }).createExchange({ timeout: 50 });
    xc.registerRequest();
    expect(xc.deadline).toBe(clock.now() + 50);
    clock.advance(50);
    expect(xc.status).toBe('timed-out');
  });
});

describe('ending', () => {
  it('rejects the response of an unanswered request with ExchangeEndedError whose cause is the abort reason', async () => {
    const xc = setup().createExchange();
    const handle = xc.registerRequest();
    const reason = new Error('shutting down');
    xc.close(reason);
    const error = await handle.response.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExchangeEndedError);
    expect(error).toMatchObject({ status: 'closed', cause: reason });
  });

  it('rejects the response of an unanswered request with ExchangeEndedError status timed-out when the timeout fires', async () => {
    const xc = setup().createExchange({ timeout: 100 });
    const handle = xc.registerRequest();
    clock.advance(100);
    const error = await handle.response.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExchangeEndedError);
    expect(error).toMatchObject({ code: 'ERR_RRXC_EXCHANGE_ENDED', status: 'timed-out' });
    expect('cause' in (error as object)).toBe(false);
  });

  it('rejects the response of an unanswered request with ExchangeEndedError status aborted when the signal aborts', async () => {
    const ac = new AbortController();
    const xc = setup().createExchange({ signal: ac.signal });
    const handle = xc.registerRequest();
    const reason = new Error('client left');
    ac.abort(reason);
    const error = await handle.response.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExchangeEndedError);
    expect(error).toMatchObject({ code: 'ERR_RRXC_EXCHANGE_ENDED', status: 'aborted', cause: reason });
  });

  it('removes every entry of the ended exchange from the controller', async () => {
    const xc = setup().createExchange();
    const a = xc.registerRequest();
    const b = xc.registerRequest();
    await controller.registerResponse({ correlationId: a.correlationId, message: 'x' });
    xc.close();
    expect(controller.pendingRequests).toBe(0);
    expect(controller.openExchanges).toBe(0);
    expect(controller.getExchange(a.correlationId)).toBeUndefined();
    expect(controller.hasRequest(b.correlationId)).toBe(false);
    expect(controller.requestAge(b.correlationId)).toBeUndefined();
  });

  it('still answers getRequest/getResponse/hasRequest after it ended', async () => {
    const xc = setup().createExchange();
    xc.registerRequest({ correlationId: 'q', message: 'question' });
    await controller.registerResponse({ correlationId: 'q', message: 'answer' });
    await xc.wait();
    expect(xc.getRequest('q')).toBe('question');
    expect(xc.getResponse('q')).toBe('answer');
    expect(xc.hasRequest('q')).toBe(true);
    expect(xc.hasRequest('other')).toBe(false);
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['0', 0],
    ['a string', 'bye'],
    ['an Error', new Error('bye')],
  ])('keeps a close reason of %s as the very same value', async (_, reason) => {
    const xc = setup().createExchange();
    const handle = xc.registerRequest();
    xc.close(reason);
    const result = await xc.wait();
    expect('reason' in result).toBe(true);
    expect(result.reason).toBe(reason);
    const error = (await handle.response.catch((e: unknown) => e)) as ExchangeEndedError;
    expect(error.cause).toBe(reason);
  });

  it.each([
    ['null', null],
    ['0', 0],
    ['a string', 'client closed'],
    ['an Error', new Error('client closed')],
  ])('ends with status aborted and keeps a signal reason of %s', async (_, reason) => {
    const ac = new AbortController();
    const xc = setup().createExchange({ signal: ac.signal });
    xc.registerRequest();
    ac.abort(reason);
    const result = await xc.wait();
    expect(result.status).toBe('aborted');
    expect(result.reason).toBe(reason);
  });

  it('keeps the DOMException an argument-less abort() gives as reason', async () => {
    const ac = new AbortController();
    const xc = setup().createExchange({ signal: ac.signal });
    ac.abort();
    const result = await xc.wait();
    expect(result.status).toBe('aborted');
    expect(result.reason).toBe(ac.signal.reason);
    expect((result.reason as DOMException).name).toBe('AbortError');
  });

  it('reports a TimeoutError abort reason, as AbortSignal.timeout() gives, as timed-out', async () => {
    const ac = new AbortController();
    const xc = setup().createExchange({ signal: ac.signal });
    const reason = new DOMException('too slow', 'TimeoutError');
    ac.abort(reason);
    expect((await xc.wait()).status).toBe('timed-out');
  });

  it('ends at once, aborted, when created with an already aborted signal', async () => {
    setup();
    const signal = AbortSignal.abort('gone');
    const xc = controller.createExchange({ signal });
    expect(xc.state).toBe('ended');
    expect(controller.openExchanges).toBe(0);
    expect(await xc.wait()).toMatchObject({ status: 'aborted', reason: 'gone' });
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('lets the first end win over later aborts, timeouts and closes', async () => {
    const ac = new AbortController();
    const xc = setup().createExchange({ signal: ac.signal, timeout: 100 });
    xc.registerRequest();
    xc.close('first');
    ac.abort('second');
    clock.advance(100);
    xc.close('third');
    await controller.close('fourth');
    expect(await xc.wait()).toMatchObject({ status: 'closed', reason: 'first' });
  });

  it('aborts exchange.signal with the reason when it ends without completing', () => {
    const xc = setup().createExchange();
    const { signal } = xc;
    xc.close('stop');
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe('stop');
  });

  it('gives an aborted signal with a TimeoutError when read after a timeout', () => {
    const xc = setup({ timeout: 10 }).createExchange();
    clock.advance(10);
    expect(xc.signal.aborted).toBe(true);
    expect((xc.signal.reason as DOMException).name).toBe('TimeoutError');
  });

  it('does not abort exchange.signal when the exchange completes', async () => {
    const xc = setup().createExchange();
    const { signal } = xc;
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'done' });
    await xc.wait();
    expect(signal.aborted).toBe(false);
  });

  it('closes on dispose (using)', () => {
    setup();
    let xc;
    {
      using scoped = controller.createExchange();
      scoped.registerRequest({ correlationId: 'scoped' });
      xc = scoped;
    }
    expect(xc.status).toBe('closed');
  });

  it('closes and waits for the tags on async dispose (await using)', async () => {
    const store = new GatedTagStore();
    setup({ tagStore: store });
    let xc: Exchange<string, string> | undefined;
    let disposed = false;
    const disposing = (async () => {
      await using scoped = controller.createExchange();
      scoped.registerRequest({ correlationId: 'scoped' });
      xc = scoped;
    })().then(() => (disposed = true));
    try {
      await flush();
      // Closed at once, but the rollback write is still pending: disposal must not be over.
      expect(xc?.status).toBe('closed');
      expect(store.pendingWrites).toBe(1);
      expect(disposed).toBe(false);
    } finally {
      store.release();
    }
    await disposing;
    expect(store.inner.getTags('scoped')).toEqual(['rollback']);
    expect(await controller.isRolledBack('scoped')).toBe(true);
  });
});

describe('responses()', () => {
  it('yields replies as they arrive, earlier ones first, and finishes when the exchange ends', async () => {
    const xc = setup().createExchange();
    for (const correlationId of ['a', 'b', 'c']) xc.registerRequest({ correlationId });
    clock.advance(1);
    await controller.registerResponse({ correlationId: 'b', message: 'B' });
    const seen: string[] = [];
    const consuming = (async () => {
      for await (const entry of xc.responses()) seen.push(`${entry.correlationId}=${entry.response}`);
    })();
    await controller.registerResponse({ correlationId: 'c', message: 'C' });
    await controller.registerResponse({ correlationId: 'a', message: 'A' });
    await xc.wait();
    await consuming;
    expect(seen).toEqual(['b=B', 'c=C', 'a=A']);
  });

  it('finishes when the exchange is closed during iteration', async () => {
    const xc = setup().createExchange();
    xc.registerRequest({ correlationId: 'a' });
    xc.registerRequest({ correlationId: 'b' });
    const seen: string[] = [];
    const consuming = (async () => {
      for await (const entry of xc.responses()) {
        seen.push(entry.correlationId);
        xc.close('enough');
      }
    })();
    await controller.registerResponse({ correlationId: 'a', message: 'A' });
    await consuming;
    expect(seen).toEqual(['a']);
    expect(await controller.registerResponse({ correlationId: 'b', message: 'late' })).toBe('rolled-back');
  });

  it('stops delivering to a consumer that broke out of its loop', async () => {
    const xc = setup().createExchange();
    xc.registerRequest({ correlationId: 'a' });
    xc.registerRequest({ correlationId: 'b' });
    const iterator = xc.responses();
    await controller.registerResponse({ correlationId: 'a', message: 'A' });
    expect((await iterator.next()).value?.correlationId).toBe('a');
    await iterator.return!();
    await controller.registerResponse({ correlationId: 'b', message: 'B' });
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
  });

  it('answers overlapping next() calls in order, none lost', async () => {
    const xc = setup().createExchange();
    xc.registerRequest({ correlationId: 'a' });
    xc.registerRequest({ correlationId: 'b' });
    const iterator = xc.responses();
    const first = iterator.next();
    const second = iterator.next();
    const third = iterator.next();
    await controller.registerResponse({ correlationId: 'a', message: 'A' });
    await controller.registerResponse({ correlationId: 'b', message: 'B' });
    xc.close();
    expect((await first).value?.correlationId).toBe('a');
    expect((await second).value?.correlationId).toBe('b');
    expect(await third).toEqual({ value: undefined, done: true });
  });

  it('keeps delivering, and completes wait(), after a consumer loop threw', async () => {
    const xc = setup().createExchange();
    const handles = ['a', 'b', 'c'].map((correlationId) => xc.registerRequest({ correlationId }));
    const bug = new Error('consumer bug');
    const failing = (async () => {
      for await (const _entry of xc.responses()) throw bug;
    })();
    const seen: string[] = [];
    const healthy = (async () => {
      for await (const entry of xc.responses()) seen.push(entry.correlationId);
    })();
    expect(await controller.registerResponse({ correlationId: 'a', message: 'A' })).toBe('delivered');
    await expect(failing).rejects.toBe(bug);
    expect(await controller.registerResponse({ correlationId: 'b', message: 'B' })).toBe('delivered');
    const waiting = xc.wait();
    expect(await controller.registerResponse({ correlationId: 'c', message: 'C' })).toBe('delivered');
    const result = await waiting;
    expect(result).toMatchObject({ status: 'completed', complete: true, unanswered: [] });
    expect(result.entries.map((e) => e.response)).toEqual(['A', 'B', 'C']);
    await expect(handles[2]!.response).resolves.toBe('C');
    await healthy;
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('replays the replies that came before it in the order they arrived, not registration order', async () => {
    setup();
    const xc = controller.createExchange();
    xc.registerRequest({ correlationId: 'first-registered' });
    xc.registerRequest({ correlationId: 'second-registered' });
    await controller.registerResponse({ correlationId: 'second-registered', message: 'B' });
    clock.advance(1);
    await controller.registerResponse({ correlationId: 'first-registered', message: 'A' });
    const seen: string[] = [];
    for await (const entry of xc.responses()) {
      seen.push(entry.correlationId);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['second-registered', 'first-registered']);
  });

  it('is empty and done for an ended exchange without replies', async () => {
    const xc = setup().createExchange();
    xc.close();
    const entries = [];
    for await (const entry of xc.responses()) entries.push(entry);
    expect(entries).toEqual([]);
  });
});

describe('run() and currentExchange()', () => {
  it('makes the exchange current across awaits inside run()', async () => {
    const xc = setup().createExchange();
    expect(controller.currentExchange()).toBeUndefined();
    await xc.run(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      controller.currentExchange()?.registerRequest({ correlationId: 'deep' });
    });
    expect(controller.getExchange('deep')).toBe(xc);
    expect(controller.currentExchange()).toBeUndefined();
  });

  it('keeps two concurrent runs apart', async () => {
    setup();
    const a = controller.createExchange();
    const b = controller.createExchange();
    const seen = await Promise.all([
      a.run(async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return controller.currentExchange();
      }),
      b.run(async () => controller.currentExchange()),
    ]);
    expect(seen).toEqual([a, b]);
  });
});

describe('the response promise', () => {
  it('causes no unhandled rejection when nobody awaits it', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const xc = setup().createExchange();
      void xc.registerRequest().response; // created, never awaited
      xc.registerRequest(); // never created
      xc.close(new Error('nobody listens'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('rejects when first read after the exchange ended', async () => {
    const xc = setup().createExchange();
    const handle = xc.registerRequest();
    xc.close();
    await expect(handle.response).rejects.toBeInstanceOf(ExchangeEndedError);
  });

  it('resolves when first read after the reply came', async () => {
    const xc = setup().createExchange();
    const handle = xc.registerRequest();
    await controller.registerResponse({ correlationId: handle.correlationId, message: 'here' });
    await expect(handle.response).resolves.toBe('here');
  });
});

describe('synchronize()', () => {
  it('runs the operation with the exchange and resolves with the result, binding currentExchange() only when asked', async () => {
    const bound = new Controller<string, string>({ bindCurrentExchange: true });
    try {
      await bound.synchronize({}, async () => {
        await Promise.resolve();
        expect(bound.currentExchange()).toBeDefined();
      });
    } finally {
      await bound.close();
    }
    setup();
    const result: ExchangeResult<string, string> = await controller.synchronize({}, (xc) => {
      expect(controller.currentExchange()).toBeUndefined();
      const { correlationId } = xc.registerRequest({ message: 'ping' });
      setImmediate(() => void controller.registerResponse({ correlationId, message: 'pong' }));
    });
    expect(result).toMatchObject({ status: 'completed', complete: true });
    expect(result.entries[0]).toMatchObject({ request: 'ping', response: 'pong' });
  });

  it('ends the exchange, tags its IDs and rethrows when the operation throws', async () => {
    setup();
    const failure = new Error('publish failed');
    let id = '';
    const error = await controller
      .synchronize({ timeout: 1_000 }, (xc) => {
        id = xc.registerRequest().correlationId;
        throw failure;
      })
      .catch((e: unknown) => e);
    expect(error).toBe(failure);
    expect(controller.openExchanges).toBe(0);
    expect(await controller.isRolledBack(id)).toBe(true);
  });

  it('ends the exchange closed, rolls back its ID and rejects with the error when the operation throws after an await', async () => {
    setup();
    const failure = new Error('publish failed on the broker');
    let xc: Exchange<string, string> | undefined;
    let id = '';
    const settled = controller
      .synchronize({}, async (exchange) => {
        xc = exchange;
        id = exchange.registerRequest().correlationId;
        await flush();
        throw failure;
      })
      .then(
        (result) => ({ result }),
        (error: unknown) => ({ error }),
      );
    await flush();
    await flush();
    expect(xc?.status).toBe('closed');
    expect(await settled).toEqual({ error: failure });
    expect(await xc!.wait()).toMatchObject({ status: 'closed', reason: failure, complete: false, unanswered: [id] });
    expect(controller.openExchanges).toBe(0);
    expect(await controller.isRolledBack(id)).toBe(true);
    expect(await controller.registerResponse({ correlationId: id, message: 'late' })).toBe('rolled-back');
  });

  it('resolves timed-out when the replies do not come in time', async () => {
    setup();
    const pending = controller.synchronize({ timeout: 200 }, (xc) => void xc.registerRequest());
    await Promise.resolve();
    clock.advance(200);
    expect((await pending).status).toBe('timed-out');
  });

  it('rejects with InvalidArgumentError without an operation', async () => {
    setup();
    await expect(controller.synchronize({}, undefined as never)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}
