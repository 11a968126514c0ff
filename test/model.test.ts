/**
 * Model-based tests: random command sequences run against the real
 * controller and against a plain model of the contract, compared after every
 * command. `RRXC_MODEL_RUNS` raises the number of sequences for a longer run
 * (`npm run test:long`).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Controller, type Exchange, type ResponseOutcome } from '../src/index.js';
import { ManualClock } from './helpers/manual-clock.js';

const RUNS = Number(process.env['RRXC_MODEL_RUNS'] ?? 1_000);
/** About 1.5 ms a sequence here; generous, so a slow machine does not fail a long run. */
const TIMEOUT = Math.max(30_000, RUNS * 10);
const ROLLBACK_TTL = 50;
const DUPLICATE_WINDOW = 30;
/** A small pool, so that IDs collide, are reused and include prototype keys. */
const IDS = ['a', 'b', 'c', 'd', '__proto__', 'constructor'] as const;

interface ModelExchange {
  readonly seq: number;
  ended: boolean;
  sealed: boolean;
  readonly deadline: number | undefined;
  readonly shared: boolean;
  readonly requests: Map<string, { answered: boolean }>;
}

interface Model {
  now: number;
  closed: boolean;
  readonly exchanges: ModelExchange[];
  /** ID → time the rollback tag was written. */
  readonly rolledBack: Map<string, number>;
  /** ID → time it was remembered as answered. */
  readonly duplicates: Map<string, number>;
  /** Expected deliveries, in order: "exchange seq/ID=message". */
  readonly deliveries: string[];
  readonly generated: string[];
}

interface Real {
  readonly clock: ManualClock;
  readonly controller: Controller<string, string>;
  readonly shared: AbortController;
  readonly exchanges: Exchange<string, string>[];
  /** Deliveries seen through the `response` promises. */
  readonly deliveries: string[];
  messages: number;
}

function endExchange(model: Model, ex: ModelExchange): void {
  if (ex.ended) return;
  ex.ended = true;
  for (const [id, { answered }] of ex.requests) {
    if (answered) {
      model.duplicates.set(id, model.now);
    } else {
      model.duplicates.delete(id);
      model.rolledBack.set(id, model.now);
    }
  }
}

function pendingOwner(model: Model, id: string): ModelExchange | undefined {
  return model.exchanges.find((ex) => !ex.ended && ex.requests.has(id));
}

function expectedOutcome(model: Model, id: string): ResponseOutcome {
  const owner = pendingOwner(model, id);
  if (owner !== undefined) return owner.requests.get(id)!.answered ? 'duplicate' : 'delivered';
  const answeredAt = model.duplicates.get(id);
  // lru-cache keeps an entry while its age is ≤ its TTL.
  if (answeredAt !== undefined && model.now - answeredAt <= DUPLICATE_WINDOW) return 'duplicate';
  const taggedAt = model.rolledBack.get(id);
  if (taggedAt !== undefined && model.now < taggedAt + ROLLBACK_TTL) return 'rolled-back';
  return 'unmatched';
}

async function settle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

/** Invariants checked after every command. */
async function check(model: Model, real: Real): Promise<void> {
  await settle();
  expect(real.deliveries).toEqual(model.deliveries);
  if (model.closed) return;
  const open = model.exchanges.filter((ex) => !ex.ended);
  expect(real.controller.openExchanges).toBe(open.length);
  expect(real.controller.pendingRequests).toBe(open.reduce((n, ex) => n + ex.requests.size, 0));
  model.exchanges.forEach((ex, i) => {
    const xc = real.exchanges[i]!;
    expect(xc.state).toBe(ex.ended ? 'ended' : ex.sealed ? 'sealed' : 'open');
    for (const id of ex.requests.keys()) {
      // No entry of an ended exchange survives in the controller.
      if (ex.ended) expect(real.controller.getExchange(id)).not.toBe(xc);
      else expect(real.controller.getExchange(id)).toBe(xc);
    }
  });
}

type IdRef = { gen: boolean; n: number };
function resolveId(model: Model, ref: IdRef): string {
  if (ref.gen && model.generated.length > 0) return model.generated[ref.n % model.generated.length]!;
  return IDS[ref.n % IDS.length]!;
}

class CreateExchange implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly timeout: number | undefined,
    readonly shared: boolean,
  ) {}
  check(model: Readonly<Model>): boolean {
    return !model.closed;
  }
  async run(model: Model, real: Real): Promise<void> {
    const xc = real.controller.createExchange({
      ...(this.timeout === undefined ? {} : { timeout: this.timeout }),
      ...(this.shared ? { signal: real.shared.signal } : {}),
    });
    real.exchanges.push(xc);
    model.exchanges.push({
      seq: model.exchanges.length,
      ended: false,
      sealed: false,
      deadline: this.timeout === undefined ? undefined : model.now + this.timeout,
      shared: this.shared,
      requests: new Map(),
    });
    await check(model, real);
  }
  toString(): string {
    return `create(timeout=${this.timeout}, shared=${this.shared})`;
  }
}

/** Registers a request under an ID from the pool, or, with no `ref`, under one rrxc generates. */
class RegisterRequest implements fc.AsyncCommand<Model, Real> {
  id = '';
  constructor(
    readonly exchange: number,
    readonly ref: IdRef | undefined,
  ) {}
  check(model: Readonly<Model>): boolean {
    return !model.closed && model.exchanges.length > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    const given = this.ref === undefined ? undefined : resolveId(model, this.ref);
    const index = this.exchange % model.exchanges.length;
    const ex = model.exchanges[index]!;
    const xc = real.exchanges[index]!;
    const conflict = given !== undefined && pendingOwner(model, given) !== undefined;
    const expected = ex.ended ? 'ERR_RRXC_EXCHANGE_ENDED' : ex.sealed ? 'ERR_RRXC_EXCHANGE_SEALED' : conflict ? 'ERR_RRXC_CORRELATION_ID_CONFLICT' : 'ok';
    let got = 'ok';
    try {
      const handle = xc.registerRequest(given === undefined ? { message: 'q-generated' } : { correlationId: given, message: `q-${given}` });
      const id = (this.id = handle.correlationId);
      handle.response.then(
        (message) => real.deliveries.push(`${index}/${id}=${message}`),
        () => undefined,
      );
    } catch (error) {
      got = (error as { code: string }).code;
    }
    expect(got).toBe(expected);
    if (got === 'ok') {
      ex.requests.set(this.id, { answered: false });
      if (given === undefined) model.generated.push(this.id);
      // An ID the application chose starts clean: its earlier rollback tag goes.
      else model.rolledBack.delete(given);
    }
    await check(model, real);
  }
  toString(): string {
    return `register(#${this.exchange}, ${this.ref === undefined ? `generated ${this.id}` : this.id})`;
  }
}

class Reply implements fc.AsyncCommand<Model, Real> {
  id = '';
  constructor(readonly ref: IdRef) {}
  check(model: Readonly<Model>): boolean {
    return !model.closed;
  }
  async run(model: Model, real: Real): Promise<void> {
    this.id = resolveId(model, this.ref);
    const message = `m${real.messages++}`;
    const expected = expectedOutcome(model, this.id);
    const outcome = await real.controller.registerResponse({ correlationId: this.id, message });
    expect(outcome).toBe(expected);
    if (outcome === 'delivered') {
      const owner = pendingOwner(model, this.id)!;
      owner.requests.get(this.id)!.answered = true;
      model.deliveries.push(`${owner.seq}/${this.id}=${message}`);
      if (owner.sealed && [...owner.requests.values()].every((r) => r.answered)) endExchange(model, owner);
    }
    await check(model, real);
  }
  toString(): string {
    return `reply(${this.id})`;
  }
}

class Wait implements fc.AsyncCommand<Model, Real> {
  constructor(readonly exchange: number) {}
  check(model: Readonly<Model>): boolean {
    return !model.closed && model.exchanges.length > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    const index = this.exchange % model.exchanges.length;
    const ex = model.exchanges[index]!;
    void real.exchanges[index]!.wait();
    if (!ex.ended) {
      ex.sealed = true;
      if ([...ex.requests.values()].every((r) => r.answered)) endExchange(model, ex);
    }
    await check(model, real);
  }
  toString(): string {
    return `wait(#${this.exchange})`;
  }
}

class CloseExchange implements fc.AsyncCommand<Model, Real> {
  constructor(readonly exchange: number) {}
  check(model: Readonly<Model>): boolean {
    return !model.closed && model.exchanges.length > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    const index = this.exchange % model.exchanges.length;
    real.exchanges[index]!.close('closed by test');
    endExchange(model, model.exchanges[index]!);
    await check(model, real);
  }
  toString(): string {
    return `close(#${this.exchange})`;
  }
}

class AbortShared implements fc.AsyncCommand<Model, Real> {
  check(model: Readonly<Model>): boolean {
    return !model.closed;
  }
  async run(model: Model, real: Real): Promise<void> {
    real.shared.abort('shutdown');
    for (const ex of model.exchanges) if (ex.shared) endExchange(model, ex);
    // Later exchanges on the same signal are created already aborted.
    (real as { shared: AbortController }).shared = new AbortController();
    for (const ex of model.exchanges) (ex as { shared: boolean }).shared = false;
    await check(model, real);
  }
  toString(): string {
    return 'abortShared()';
  }
}

class Advance implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check(model: Readonly<Model>): boolean {
    return !model.closed;
  }
  async run(model: Model, real: Real): Promise<void> {
    const until = model.now + this.ms;
    const due = model.exchanges
      .filter((ex) => !ex.ended && ex.deadline !== undefined && ex.deadline <= until)
      .sort((x, y) => x.deadline! - y.deadline! || x.seq - y.seq);
    for (const ex of due) {
      model.now = ex.deadline!;
      endExchange(model, ex);
    }
    model.now = until;
    real.clock.advance(this.ms);
    await check(model, real);
  }
  toString(): string {
    return `advance(${this.ms})`;
  }
}

class LookUpTag implements fc.AsyncCommand<Model, Real> {
  constructor(readonly id: string) {}
  check(model: Readonly<Model>): boolean {
    return !model.closed;
  }
  async run(model: Model, real: Real): Promise<void> {
    const taggedAt = model.rolledBack.get(this.id);
    const expected = taggedAt !== undefined && model.now < taggedAt + ROLLBACK_TTL;
    expect(await real.controller.isRolledBack(this.id)).toBe(expected);
    await check(model, real);
  }
  toString(): string {
    return `isRolledBack(${this.id})`;
  }
}

class CloseController implements fc.AsyncCommand<Model, Real> {
  check(model: Readonly<Model>): boolean {
    return !model.closed;
  }
  async run(model: Model, real: Real): Promise<void> {
    await real.controller.close();
    for (const ex of model.exchanges) endExchange(model, ex);
    for (const xc of real.exchanges) expect(xc.state).toBe('ended');
    expect(real.clock.pending).toBe(0);
    model.closed = true;
    await check(model, real);
  }
  toString(): string {
    return 'closeController()';
  }
}

const id = fc.constantFrom(...IDS);
const ref = fc.record({ gen: fc.boolean(), n: fc.nat(20) });
const exchangeIndex = fc.nat(7);
/** Times that land on deadlines and TTL boundaries (ROLLBACK_TTL 50, DUPLICATE_WINDOW 30) often. */
const ms = fc.constantFrom(0, 1, 5, 10, 20, 30, 49, 50);
// One weighted choice per step: closing the controller ends a sequence, so it must be rare.
const commands = fc.commands(
  [
    fc.oneof(
      { weight: 4, arbitrary: fc.tuple(fc.option(ms, { nil: undefined }), fc.boolean()).map(([t, s]) => new CreateExchange(t, s)) },
      { weight: 6, arbitrary: fc.tuple(exchangeIndex, ref).map(([x, i]) => new RegisterRequest(x, i)) },
      { weight: 6, arbitrary: exchangeIndex.map((x) => new RegisterRequest(x, undefined)) },
      { weight: 8, arbitrary: ref.map((i) => new Reply(i)) },
      { weight: 3, arbitrary: exchangeIndex.map((x) => new Wait(x)) },
      { weight: 2, arbitrary: exchangeIndex.map((x) => new CloseExchange(x)) },
      { weight: 1, arbitrary: fc.constant(new AbortShared()) },
      { weight: 4, arbitrary: ms.map((t) => new Advance(t)) },
      { weight: 2, arbitrary: id.map((i) => new LookUpTag(i)) },
      { weight: 1, arbitrary: fc.constant(new CloseController()) },
    ),
  ],
  { size: '+1' },
);

describe('the controller against a model of the contract', () => {
  it(`routes each reply to exactly its owner at most once, leaves nothing of ended exchanges, tags every unanswered ID until its TTL (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const clock = new ManualClock();
        const controller = new Controller<string, string>({ clock, rollbackTtl: ROLLBACK_TTL, duplicateWindow: DUPLICATE_WINDOW });
        const model: Model = { now: clock.now(), closed: false, exchanges: [], rolledBack: new Map(), duplicates: new Map(), deliveries: [], generated: [] };
        const real: Real = { clock, controller, shared: new AbortController(), exchanges: [], deliveries: [], messages: 0 };
        try {
          await fc.asyncModelRun(() => ({ model, real }), cmds);
        } finally {
          await controller.close();
        }
        expect(clock.pending).toBe(0);
      }),
      { numRuns: RUNS },
    );
  }, TIMEOUT);
});

describe('interleavings of replies with abort, timeout and close', () => {
  it('delivers each reply or rolls it back, never both, whatever the order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 1, max: 6 }), fc.constantFrom('abort', 'close', 'timeout', 'controller'), async (s, n, ender) => {
        const clock = new ManualClock();
        const controller = new Controller<number, number>({ clock });
        const ac = new AbortController();
        const xc = controller.createExchange({ signal: ac.signal, timeout: 10 });
        const handles = Array.from({ length: n }, (_, i) => xc.registerRequest({ message: i }));
        const waiting = xc.wait();
        const outcomes = handles.map((h, i) =>
          s
            .schedule(Promise.resolve(i))
            .then((v) => controller.registerResponse({ correlationId: h.correlationId, message: v }))
            .catch((error: { code: string }) => error.code),
        );
        const ending = s.schedule(Promise.resolve()).then(() => {
          if (ender === 'abort') ac.abort('stop');
          else if (ender === 'close') xc.close('stop');
          else if (ender === 'timeout') clock.advance(10);
          else return controller.close('stop');
          return undefined;
        });
        await s.waitAll();
        const [result, settled] = await Promise.all([waiting, Promise.all(outcomes), ending]);
        const delivered = settled.flatMap((o, i) => (o === 'delivered' ? [handles[i]!.correlationId] : []));
        const rolledBack = settled.flatMap((o, i) => (o === 'rolled-back' ? [handles[i]!.correlationId] : []));
        const allowed = ['delivered', 'rolled-back', ...(ender === 'controller' ? ['ERR_RRXC_CONTROLLER_CLOSED'] : [])];
        expect(settled.filter((o) => !allowed.includes(o))).toEqual([]);
        expect(result.entries.filter((e) => e.answered).map((e) => e.correlationId)).toEqual(delivered);
        expect([...result.unanswered].sort()).toEqual(expect.arrayContaining([...rolledBack].sort()));
        expect(delivered.filter((d) => result.unanswered.includes(d))).toEqual([]);
        expect(result.status === 'completed').toBe(delivered.length === n);
        await controller.close();
        expect(clock.pending).toBe(0);
      }),
      { numRuns: Math.max(200, RUNS / 5) },
    );
  });
});
