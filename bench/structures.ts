// Structures: every piece of engine tuning in the core, against the plain
// thing it replaced, so that each claim in a comment or commit message is
// re-checked from the repository (on a Node upgrade, say).
//
//   npm run bench:structures [-- --quick] [-- --rounds=15] [-- --only=slot,open-set]
//   npm run bench -- --only=structures          (the same suite, through bench/index.ts)
//
// Each candidate pairs the bespoke code (imported from src/ through tsx, or a
// replica written here where the trick is a pattern, not a module) with the
// plain one. Every candidate runs in a fresh process of its own, both its
// variants in that one process: compiled code, type feedback and heap left
// by another candidate would otherwise favour one of them (by more than 2×
// before candidates were separated). A round builds a variant's steady
// state from nothing — `live` entries held, the heap collected so they sit
// in the old generation as in a long-running service — runs an untimed quarter of
// the workload to warm the JIT, then times the workload: insert + delete
// (or whatever the candidate does per operation) against those live
// entries. Garbage collection is inside the timed part, never forced there:
// the workloads are long enough for many scavenges and, with 200 000 live,
// for promotion and old-space growth. Rounds alternate the two variants,
// the order rotating every round; one untimed round of each comes first.
//
// How to read it:
// - ops/s are medians over the rounds; "ratio" is bespoke / plain (> 1: the
//   bespoke one is faster); "paired" is the interquartile range of the
//   per-round ratios (the two runs of a round are neighbours in time, so
//   this is the run-to-run spread of the comparison itself).
// - B/entry is heap (heapUsed + array buffers) per live entry after a full
//   collection, driver arrays excluded; its ratio is plain / bespoke (> 1:
//   the bespoke one is smaller).
// - verdict: "keeps its place" when the gain is above 1.15× and outside
//   the run-to-run spread — the bespoke rounds' lower quartile above the
//   plain rounds' upper quartile (for bytes: its upper below their lower);
//   "plain is better" for the same test the other way round; else "within
//   noise → replace with the plain thing".
// - GC: milliseconds of collection per timed round, and how many
//   scavenges / mark-compacts, from perf_hooks' gc entries.
// - The micro-benchmark says what a structure costs where it is used; what
//   it buys a whole exchange is for `npm run bench` to say (a structure
//   that is 3× faster may be a few per cent of a reply).
// Results go to bench/results/structures.json (--quick: structures-quick.json,
// --only: structures-only.json, neither committed). A full run takes 15–40
// minutes on two shared cores; --quick (a second or two per candidate, 3
// rounds) only checks that everything runs.
// The machine is usually shared: run it several times and look at the spread
// across runs before believing a ratio near 1.15.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { constants, performance, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { nanoid, urlAlphabet } from 'nanoid';
import { fullGc, machine, median } from './harness.js';
import { systemClock } from '../src/clock.js';
import { DuplicateWindow } from '../src/routing/duplicate-window.js';
import { SLOTS, secureId, slotOf, slottedId } from '../src/routing/secure-id.js';
import { RenewingMap } from '../src/structures/renewing-map.js';
import { Answered, Result } from '../src/results/snapshots.js';
import { OPEN_SET_INDEX, OpenSet } from '../src/structures/open-set.js';
import { SlotTable } from '../src/structures/slot-table.js';
import { TimerLane } from '../src/timing/timer-lane.js';
import type { ExchangeResult, RequestResponse } from '../src/types.js';

// ---------------------------------------------------------------------------
// Harness

/** One variant's steady state, built by {@link Variant.prepare}. */
interface Runner {
  /** `ops` operations of the workload. */
  churn(ops: number): void | Promise<void>;
  /** Lets go of everything it holds (timers included). */
  dispose(): void;
}

interface Variant {
  readonly label: string;
  /**
   * Builds the steady state with `live` entries held. Calls `settled` once
   * its driver's own arrays exist and before the first entry: the heap
   * baseline that B/entry is counted from.
   */
  prepare(live: number, settled: () => void): Runner;
}

interface Candidate {
  /** For --only (matched as a prefix). */
  readonly id: string;
  readonly title: string;
  /** Entries held while the workload runs. */
  readonly live: number;
  /** Operations per timed round. */
  readonly ops: number;
  /** What one operation is. */
  readonly op: string;
  readonly bespoke: Variant;
  readonly plain: Variant;
}

interface Sample {
  readonly opsPerSecond: number;
  readonly bytesPerEntry: number;
  readonly gcMs: number;
  readonly scavenges: number;
  readonly markCompacts: number;
}

type Verdict = 'keeps its place' | 'plain is better → replace with the plain thing' | 'within noise → replace with the plain thing';

interface Comparison {
  readonly bespoke: number;
  readonly plain: number;
  /** Gain of the bespoke variant: ops/s bespoke / plain; bytes plain / bespoke. */
  readonly ratio: number;
  /** Interquartile range of the per-round gains. */
  readonly paired: readonly [number, number];
  readonly verdict: Verdict;
}

export interface CandidateResult {
  readonly id: string;
  readonly title: string;
  readonly live: number;
  readonly ops: number;
  readonly op: string;
  readonly bespoke: { readonly label: string; readonly rounds: readonly Sample[] };
  readonly plain: { readonly label: string; readonly rounds: readonly Sample[] };
  readonly speed: Comparison;
  readonly memory: Comparison;
  readonly gc: { readonly bespokeMs: number; readonly plainMs: number };
}

export interface StructuresResults {
  readonly version: 1;
  readonly date: string;
  readonly quick: boolean;
  readonly command: string;
  readonly rounds: number;
  /** The --only filter of a partial run. */
  readonly only?: readonly string[];
  readonly durationSeconds: number;
  readonly machine: Readonly<Record<string, string | number>>;
  readonly loadAverage: { readonly before: readonly number[]; readonly after: readonly number[] };
  readonly rule: string;
  readonly candidates: readonly CandidateResult[];
}

const GAIN = 1.15;
const WARM_SHARE = 0.25;

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/** Heap in use after a full collection, array buffers (typed arrays' memory) included. */
function settledBytes(): number {
  fullGc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

interface GcRecord {
  readonly start: number;
  readonly duration: number;
  readonly kind: number;
}
const gcRecords: GcRecord[] = [];
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
    gcRecords.push({ start: entry.startTime, duration: entry.duration, kind });
  }
});

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function sample(candidate: Candidate, variant: Variant, ops: number): Promise<Sample> {
  let baseline = 0;
  fullGc();
  const runner = variant.prepare(candidate.live, () => {
    baseline = settledBytes();
  });
  const held = settledBytes();
  await runner.churn(Math.ceil(ops * WARM_SHARE));
  gcRecords.length = 0;
  const t0 = performance.now();
  await runner.churn(ops);
  const t1 = performance.now();
  runner.dispose();
  // gc entries are delivered asynchronously.
  await nextTurn();
  await nextTurn();
  let gcMs = 0;
  let scavenges = 0;
  let markCompacts = 0;
  for (const r of gcRecords) {
    if (r.start < t0 || r.start > t1) continue;
    gcMs += r.duration;
    if (r.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
    else if (r.kind === constants.NODE_PERFORMANCE_GC_MAJOR) markCompacts++;
  }
  return { opsPerSecond: ops / ((t1 - t0) / 1000), bytesPerEntry: (held - baseline) / candidate.live, gcMs, scavenges, markCompacts };
}

function compare(bespoke: readonly number[], plain: readonly number[], higherIsBetter: boolean): Comparison {
  const b = median(bespoke);
  const p = median(plain);
  const gain = (x: number, y: number): number => (higherIsBetter ? x / y : y / x);
  const ratio = gain(b, p);
  const perRound = bespoke.map((x, i) => gain(x, plain[i]!));
  // "Outside the spread": the interquartile ranges of the two variants' rounds do not overlap.
  const bespokeAhead = higherIsBetter ? quantile(bespoke, 0.25) > quantile(plain, 0.75) : quantile(bespoke, 0.75) < quantile(plain, 0.25);
  const plainAhead = higherIsBetter ? quantile(plain, 0.25) > quantile(bespoke, 0.75) : quantile(plain, 0.75) < quantile(bespoke, 0.25);
  const verdict: Verdict =
    ratio > GAIN && bespokeAhead
      ? 'keeps its place'
      : 1 / ratio > GAIN && plainAhead
        ? 'plain is better → replace with the plain thing'
        : 'within noise → replace with the plain thing';
  return { bespoke: b, plain: p, ratio, paired: [quantile(perRound, 0.25), quantile(perRound, 0.75)], verdict };
}

const rotate = <T>(items: readonly T[], round: number): T[] => (round % 2 === 0 ? [...items] : [...items].reverse());

async function measure(candidate: Candidate, rounds: number, scale: number): Promise<CandidateResult> {
  const ops = Math.max(1, Math.round(candidate.ops * scale));
  const variants = [candidate.bespoke, candidate.plain];
  const samples = new Map<Variant, Sample[]>(variants.map((v) => [v, []]));
  // One untimed round each: the code of both is compiled before the first timed one.
  for (const v of variants) await sample(candidate, v, ops);
  for (let round = 0; round < rounds; round++) {
    for (const v of rotate(variants, round)) samples.get(v)!.push(await sample(candidate, v, ops));
  }
  const b = samples.get(candidate.bespoke)!;
  const p = samples.get(candidate.plain)!;
  const speed = compare(
    b.map((s) => s.opsPerSecond),
    p.map((s) => s.opsPerSecond),
    true,
  );
  const memory = compare(
    b.map((s) => s.bytesPerEntry),
    p.map((s) => s.bytesPerEntry),
    false,
  );
  const result: CandidateResult = {
    id: candidate.id,
    title: candidate.title,
    live: candidate.live,
    ops,
    op: candidate.op,
    bespoke: { label: candidate.bespoke.label, rounds: b },
    plain: { label: candidate.plain.label, rounds: p },
    speed,
    memory,
    gc: { bespokeMs: median(b.map((s) => s.gcMs)), plainMs: median(p.map((s) => s.gcMs)) },
  };
  return result;
}

// ---------------------------------------------------------------------------
// Shared pieces of the workloads

const ID_LENGTH = 21;
/** A shared payload: its bytes never count. */
const PAYLOAD = Object.freeze({ drop: false });
/** Long enough never to fire during a run. */
const LONG_MS = 600_000;
/** Where the workloads leave what they build, so that nothing is optimised away. */
let sink: unknown;

/** Random numbers fixed for the process (xorshift32), the same for both variants of a candidate. */
const RANDOM = new Uint32Array(1 << 16);
{
  let x = 0x9e3779b9;
  for (let i = 0; i < RANDOM.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    RANDOM[i] = x >>> 0;
  }
}
const RANDOM_MASK = RANDOM.length - 1;

/** The exchange a routed entry belongs to, as far as this bench needs one: something each entry reaches. */
class Owner {
  last: unknown = undefined;
  unanswered = 1;
  constructor(readonly seq: number) {}
}

/** A pending request, as the index holds it. */
class Entry {
  constructor(
    readonly correlationId: string,
    readonly message: unknown,
    readonly owner: Owner,
    readonly requestedAt: number,
  ) {}
}

// ---------------------------------------------------------------------------
// 1. Routing: SlotTable + slotted IDs against a Map keyed by the ID.
//
// Per operation the oldest request's reply arrives — its ID read back from a
// "wire" buffer, a fresh flat string as a decoded message's would be — is
// looked up, checked and released, and a new request is registered (ID made,
// entry stored, ID written to the wire). FIFO: equal latencies.

const slotRouting: Variant = {
  label: 'SlotTable + slottedId/slotOf',
  prepare(live, settled) {
    const wire = Buffer.alloc(live * ID_LENGTH);
    settled();
    const table = new SlotTable<Entry>(SLOTS);
    let seq = 0;
    const register = (k: number): void => {
      const slot = table.claim();
      const id = slottedId(slot);
      table.set(slot, new Entry(id, PAYLOAD, new Owner(seq), seq++));
      wire.write(id, k * ID_LENGTH, 'latin1');
    };
    for (let k = 0; k < live; k++) register(k);
    let k = 0;
    return {
      churn(ops) {
        for (let i = 0; i < ops; i++) {
          const at = k * ID_LENGTH;
          const id = wire.toString('latin1', at, at + ID_LENGTH);
          const slot = slotOf(id);
          const entry = table.get(slot);
          if (entry === undefined || entry.correlationId !== id) throw new Error('slot routing lost an entry');
          table.release(slot);
          register(k);
          if (++k === live) k = 0;
        }
      },
      dispose() {},
    };
  },
};

function mapRouting(label: string, generate: () => string): Variant {
  return {
    label,
    prepare(live, settled) {
      const wire = Buffer.alloc(live * ID_LENGTH);
      settled();
      const map = new Map<string, Entry>();
      let seq = 0;
      const register = (k: number): void => {
        const id = generate();
        map.set(id, new Entry(id, PAYLOAD, new Owner(seq), seq++));
        wire.write(id, k * ID_LENGTH, 'latin1');
      };
      for (let k = 0; k < live; k++) register(k);
      let k = 0;
      return {
        churn(ops) {
          for (let i = 0; i < ops; i++) {
            const at = k * ID_LENGTH;
            const id = wire.toString('latin1', at, at + ID_LENGTH);
            const entry = map.get(id);
            if (entry === undefined) throw new Error('map routing lost an entry');
            map.delete(id);
            register(k);
            if (++k === live) k = 0;
          }
        },
        dispose() {},
      };
    },
  };
}

const mapNanoid = mapRouting('Map<string, entry>, nanoid() IDs', () => nanoid());
const mapSecureId = mapRouting('Map<string, entry>, secureId() IDs', secureId);

// 2. RenewingMap against Map: the same routing churn, secureId() keys.
//
// RenewingMap is within noise at 10 000 and 200 000 live — tables that
// big live in large-object space, and entries that live that long are
// promoted whatever pins them — and pays at 1 000 live, entries dying
// young on ordinary old-space pages (a plain Map there fell into repeated
// mark-compacts: see f0aef0f).

const renewingRouting: Variant = {
  label: 'RenewingMap<string, entry>, secureId() IDs',
  prepare(live, settled) {
    const wire = Buffer.alloc(live * ID_LENGTH);
    settled();
    const map = new RenewingMap<string, Entry>();
    let seq = 0;
    const register = (k: number): void => {
      const id = secureId();
      map.set(id, new Entry(id, PAYLOAD, new Owner(seq), seq++));
      wire.write(id, k * ID_LENGTH, 'latin1');
    };
    for (let k = 0; k < live; k++) register(k);
    let k = 0;
    return {
      churn(ops) {
        for (let i = 0; i < ops; i++) {
          const at = k * ID_LENGTH;
          const id = wire.toString('latin1', at, at + ID_LENGTH);
          const entry = map.get(id);
          if (entry === undefined) throw new Error('renewing map lost an entry');
          map.delete(id);
          register(k);
          if (++k === live) k = 0;
        }
      },
      dispose() {},
    };
  },
};

// ---------------------------------------------------------------------------
// 3. The duplicate window against a two-generation Map<string, number>.
//
// Per operation one answered ID is added (a 60 s window, 100 000 bound: at
// this rate the bound rotates the generations); every 1 024th operation two
// look-ups follow, one of an ID added 512 operations before, one of an ID
// never added. `live` answers are added before timing: a full window.

const WINDOW_MS = 60_000;
const MAX_DUPLICATES = 100_000;
const RECENT = 1_024;
/** A backplane's instance prefix: its IDs name no slot, and are hashed. */
const INSTANCE_PREFIX = 'k3Xv9QpZ~';

/** What a plain duplicate window would be: two generations of ID → answer time. */
class TwoGenerationMap {
  readonly #windowMs: number;
  readonly #generationSize: number;
  #current = new Map<string, number>();
  #previous = new Map<string, number>();
  #since = 0;

  constructor(windowMs: number, maxIds: number) {
    this.#windowMs = windowMs;
    this.#generationSize = Math.max(1, Math.floor(maxIds / 2));
  }

  add(id: string, at: number): void {
    const current = this.#current;
    if (current.size >= this.#generationSize || (current.size > 0 && at - this.#since > this.#windowMs)) {
      this.#previous = current;
      this.#current = new Map();
    }
    if (this.#current.size === 0) this.#since = at;
    this.#current.set(id, at);
  }

  has(id: string, now: number): boolean {
    const at = this.#current.get(id) ?? this.#previous.get(id);
    return at !== undefined && now - at <= this.#windowMs;
  }
}

/** The random part of a hashed ID: flattened, as sending it would. */
function instanceId(): string {
  const id = INSTANCE_PREFIX + secureId();
  id.charCodeAt(0);
  return id;
}

const windowGenerated: Variant = {
  label: 'DuplicateWindow, addGenerated (fingerprints)',
  prepare(live, settled) {
    const recent = new Array<string>(RECENT).fill('');
    const never = slottedId(7);
    settled();
    const epoch = systemClock.now();
    const window = new DuplicateWindow(WINDOW_MS, MAX_DUPLICATES, systemClock, epoch);
    let n = 0;
    let found = 0;
    const add = (): void => {
      const slot = n & (RECENT - 1);
      const id = slottedId(slot);
      window.addGenerated(id, slot, systemClock.now() - epoch);
      recent[slot] = id;
      n++;
    };
    for (let i = 0; i < live; i++) add();
    return {
      churn(ops) {
        for (let i = 0; i < ops; i++) {
          add();
          if ((n & (RECENT - 1)) === 0) {
            if (window.has(recent[RECENT / 2]!)) found++;
            if (window.has(never)) throw new Error('duplicate window: a never-added ID was found');
          }
        }
        if (ops >= RECENT && found === 0) throw new Error('duplicate window: no answered ID was found');
      },
      dispose() {},
    };
  },
};

const windowHashed: Variant = {
  label: 'DuplicateWindow, add (hashed fingerprints)',
  prepare(live, settled) {
    const recent = new Array<string>(RECENT).fill('');
    const never = instanceId();
    settled();
    const epoch = systemClock.now();
    const window = new DuplicateWindow(WINDOW_MS, MAX_DUPLICATES, systemClock, epoch);
    let n = 0;
    let found = 0;
    const add = (): void => {
      const id = instanceId();
      window.add(id, systemClock.now() - epoch);
      recent[n & (RECENT - 1)] = id;
      n++;
    };
    for (let i = 0; i < live; i++) add();
    return {
      churn(ops) {
        for (let i = 0; i < ops; i++) {
          add();
          if ((n & (RECENT - 1)) === 0) {
            if (window.has(recent[RECENT / 2]!)) found++;
            if (window.has(never)) throw new Error('duplicate window: a never-added ID was found');
          }
        }
        if (ops >= RECENT && found === 0) throw new Error('duplicate window: no answered ID was found');
      },
      dispose() {},
    };
  },
};

function windowMap(label: string, generate: (n: number) => string): Variant {
  return {
    label,
    prepare(live, settled) {
      const recent = new Array<string>(RECENT).fill('');
      const never = generate(7);
      settled();
      const epoch = systemClock.now();
      const window = new TwoGenerationMap(WINDOW_MS, MAX_DUPLICATES);
      let n = 0;
      let found = 0;
      const add = (): void => {
        const id = generate(n & (RECENT - 1));
        window.add(id, systemClock.now() - epoch);
        recent[n & (RECENT - 1)] = id;
        n++;
      };
      for (let i = 0; i < live; i++) add();
      return {
        churn(ops) {
          for (let i = 0; i < ops; i++) {
            add();
            if ((n & (RECENT - 1)) === 0) {
              if (window.has(recent[RECENT / 2]!, systemClock.now() - epoch)) found++;
              if (window.has(never, systemClock.now() - epoch)) throw new Error('two-generation map: a never-added ID was found');
            }
          }
          if (ops >= RECENT && found === 0) throw new Error('two-generation map: no answered ID was found');
        },
        dispose() {},
      };
    },
  };
}

const windowMapGenerated = windowMap('two-generation Map<string, number>, slotted IDs', slottedId);
const windowMapHashed = windowMap('two-generation Map<string, number>, instance IDs', instanceId);

// ---------------------------------------------------------------------------
// 4. OpenSet against Set: per operation a random open exchange ends (leaves)
// and a new one opens (joins). Members are exchange-sized objects.

class OpenMember {
  [OPEN_SET_INDEX] = -1;
  host: unknown = PAYLOAD;
  createdAt: number;
  signal: unknown = undefined;
  timeout = 30_000;
  ticket = 0;
  state = 'open';
  last: unknown = undefined;
  unanswered = 1;
  extras: unknown = undefined;
  result: unknown = undefined;
  settled: unknown = undefined;
  settle: unknown = undefined;
  constructor(readonly seq: number) {
    this.createdAt = seq;
  }
}

class PlainMember {
  host: unknown = PAYLOAD;
  createdAt: number;
  signal: unknown = undefined;
  timeout = 30_000;
  ticket = 0;
  state = 'open';
  last: unknown = undefined;
  unanswered = 1;
  extras: unknown = undefined;
  result: unknown = undefined;
  settled: unknown = undefined;
  settle: unknown = undefined;
  constructor(readonly seq: number) {
    this.createdAt = seq;
  }
}

const openSet: Variant = {
  label: 'OpenSet (members know their slot)',
  prepare(live, settled) {
    const members = new Array<OpenMember | undefined>(live).fill(undefined);
    settled();
    const set = new OpenSet<OpenMember>();
    let seq = 0;
    for (let k = 0; k < live; k++) {
      const m = new OpenMember(seq++);
      set.add(m);
      members[k] = m;
    }
    let r = 0;
    return {
      churn(ops) {
        for (let i = 0; i < ops; i++) {
          const k = RANDOM[r++ & RANDOM_MASK]! % live;
          set.delete(members[k]!);
          const m = new OpenMember(seq++);
          set.add(m);
          members[k] = m;
        }
        if (set.size !== live) throw new Error('open set lost a member');
      },
      dispose() {},
    };
  },
};

const plainSet: Variant = {
  label: 'Set',
  prepare(live, settled) {
    const members = new Array<PlainMember | undefined>(live).fill(undefined);
    settled();
    const set = new Set<PlainMember>();
    let seq = 0;
    for (let k = 0; k < live; k++) {
      const m = new PlainMember(seq++);
      set.add(m);
      members[k] = m;
    }
    let r = 0;
    return {
      churn(ops) {
        for (let i = 0; i < ops; i++) {
          const k = RANDOM[r++ & RANDOM_MASK]! % live;
          set.delete(members[k]!);
          const m = new PlainMember(seq++);
          set.add(m);
          members[k] = m;
        }
        if (set.size !== live) throw new Error('set lost a member');
      },
      dispose() {},
    };
  },
};

// ---------------------------------------------------------------------------
// 5. secureId() against nanoid(): per operation one ID, kept for `live`
// operations (as long as its request is pending). B/entry is what a held,
// never-read ID retains: nanoid's rope until something reads it.

function idRing(label: string, generate: () => string): Variant {
  return {
    label,
    prepare(live, settled) {
      const ids = new Array<string>(live).fill('');
      settled();
      for (let k = 0; k < live; k++) ids[k] = generate();
      let k = 0;
      return {
        churn(ops) {
          for (let i = 0; i < ops; i++) {
            ids[k] = generate();
            if (++k === live) k = 0;
          }
        },
        dispose() {
          sink = ids[0];
        },
      };
    },
  };
}

const secureIds = idRing('secureId()', secureId);
const nanoids = idRing('nanoid()', () => nanoid());

// ---------------------------------------------------------------------------
// 6. Results by constructor functions (snapshots.ts) against object literals.
//
// Results are built in bursts of `live` (a burst of replies), each burst
// kept until the next one is built (the callers resume later), so scavenges
// see them survive, as in the routing bench. One operation: one result
// with one answered entry, the times absolute as in a result.
//
// This replica does not reproduce what keeps snapshots.ts: here V8 decides
// "don't tenure" for the literals' allocation sites at their first
// scavenge and never changes its mind (--trace-pretenuring), while in the
// library, routing from a fresh process (bench/profile.ts rrxc routing
// 10000), literal results made replies about 1.5× slower. Whether a site is
// pretenured depends on what the process did first. Read this row as "the
// constructors cost nothing here", not as "they gain nothing".

type P = typeof PAYLOAD;
const NONE: readonly string[] = Object.freeze([]);
const CLOCK_ORIGIN = Date.now();
const IDS = Array.from({ length: RECENT }, () => secureId());

const snapshotsByConstructor: Variant = {
  label: 'new Result / new Answered (snapshots.ts)',
  prepare(live, settled) {
    settled();
    let n = 0;
    const burst = (): ExchangeResult<P, P>[] => {
      const out = new Array<ExchangeResult<P, P>>(live);
      for (let i = 0; i < live; i++) {
        const t = CLOCK_ORIGIN + n;
        const entries = new Array<RequestResponse<P, P>>(1);
        entries[0] = new Answered<P, P>(IDS[n & (RECENT - 1)]!, PAYLOAD, PAYLOAD, t, t + 1, 1);
        out[i] = new Result<P, P>(`x${n}`, 'completed', true, t, t + 1, 1, entries, NONE, NONE, NONE);
        n++;
      }
      return out;
    };
    let held = burst();
    return {
      churn(ops) {
        for (let done = 0; done < ops; done += live) held = burst();
      },
      dispose() {
        sink = held;
        held = [];
      },
    };
  },
};

const snapshotsByLiteral: Variant = {
  label: 'object literals',
  prepare(live, settled) {
    settled();
    let n = 0;
    const burst = (): ExchangeResult<P, P>[] => {
      const out = new Array<ExchangeResult<P, P>>(live);
      for (let i = 0; i < live; i++) {
        const t = CLOCK_ORIGIN + n;
        const entries = new Array<RequestResponse<P, P>>(1);
        entries[0] = { correlationId: IDS[n & (RECENT - 1)]!, request: PAYLOAD, response: PAYLOAD, answered: true, requestedAt: t, respondedAt: t + 1, latencyMs: 1 };
        out[i] = { exchangeId: `x${n}`, status: 'completed', complete: true, createdAt: t, endedAt: t + 1, durationMs: 1, entries, unanswered: NONE, committed: NONE, undecided: NONE };
        n++;
      }
      return out;
    };
    let held = burst();
    return {
      churn(ops) {
        for (let done = 0; done < ops; done += live) held = burst();
      },
      dispose() {
        sink = held;
        held = [];
      },
    };
  },
};

// ---------------------------------------------------------------------------
// 7. wait()'s shared executor (a replica of src/exchange.ts's pattern)
// against an arrow function per promise. Per operation the oldest waiter
// is settled and a new one made, wait() called and awaited (a then()).

let captured: ((value: unknown) => void) | undefined;
function captureResolve(resolve: (value: unknown) => void): void {
  captured = resolve;
}

class CapturingWaiter {
  #settled: Promise<unknown> | undefined;
  #settle: ((value: unknown) => void) | undefined;

  wait(): Promise<unknown> {
    if (this.#settled === undefined) {
      this.#settled = new Promise(captureResolve);
      this.#settle = captured;
      captured = undefined;
    }
    return this.#settled;
  }

  end(value: unknown): void {
    this.#settle?.(value);
    this.#settle = undefined;
  }
}

class ClosureWaiter {
  #settled: Promise<unknown> | undefined;
  #settle: ((value: unknown) => void) | undefined;

  wait(): Promise<unknown> {
    if (this.#settled === undefined) {
      this.#settled = new Promise((resolve) => {
        this.#settle = resolve;
      });
    }
    return this.#settled;
  }

  end(value: unknown): void {
    this.#settle?.(value);
    this.#settle = undefined;
  }
}

/** Lets the settled waiters' reactions run every this many operations. */
const WAITER_BATCH = 1_024;

const capturingWaiters: Variant = {
  label: 'new Promise(captureResolve), module-global capture',
  prepare(live, settled) {
    const waiters = new Array<CapturingWaiter | undefined>(live).fill(undefined);
    settled();
    let resumed = 0;
    const onResume = (): void => {
      resumed++;
    };
    for (let k = 0; k < live; k++) {
      const w = new CapturingWaiter();
      w.wait().then(onResume, onResume);
      waiters[k] = w;
    }
    let k = 0;
    return {
      async churn(ops) {
        const before = resumed;
        for (let i = 0; i < ops; i++) {
          waiters[k]!.end(PAYLOAD);
          const w = new CapturingWaiter();
          w.wait().then(onResume, onResume);
          waiters[k] = w;
          if (++k === live) k = 0;
          if (i % WAITER_BATCH === WAITER_BATCH - 1) await null;
        }
        await null;
        if (resumed - before !== ops) throw new Error(`capturing waiters: ${resumed - before} of ${ops} resumed`);
      },
      dispose() {
        for (const w of waiters) w?.end(PAYLOAD);
      },
    };
  },
};

const closureWaiters: Variant = {
  label: 'new Promise((resolve) => { this.x = resolve })',
  prepare(live, settled) {
    const waiters = new Array<ClosureWaiter | undefined>(live).fill(undefined);
    settled();
    let resumed = 0;
    const onResume = (): void => {
      resumed++;
    };
    for (let k = 0; k < live; k++) {
      const w = new ClosureWaiter();
      w.wait().then(onResume, onResume);
      waiters[k] = w;
    }
    let k = 0;
    return {
      async churn(ops) {
        const before = resumed;
        for (let i = 0; i < ops; i++) {
          waiters[k]!.end(PAYLOAD);
          const w = new ClosureWaiter();
          w.wait().then(onResume, onResume);
          waiters[k] = w;
          if (++k === live) k = 0;
          if (i % WAITER_BATCH === WAITER_BATCH - 1) await null;
        }
        await null;
        if (resumed - before !== ops) throw new Error(`closure waiters: ${resumed - before} of ${ops} resumed`);
      },
      dispose() {
        for (const w of waiters) w?.end(PAYLOAD);
      },
    };
  },
};

// ---------------------------------------------------------------------------
// 8. id.charCodeAt(0) on an ID from the application's generator (newId),
// built by concatenation as nanoid() builds its IDs. Per operation the
// oldest request's reply is routed (a fresh flat copy of the ID from the
// wire finds the key, which is then deleted) and a new ID is made, checked
// and stored as a Map key — and never read otherwise: the wire copy is
// written from the ID's character codes, not from the string.
//
// "isolated": the ID goes straight into a Map — what the call alone does.
// "library path": as CorrelationIndex.newId + addClaimed do it — the length
// check, the call (or not), has() (slotOf first, then the named map), and
// the index's Map — so whatever else reads the ID there counts too.
// "sent": the ID is then serialised into the outgoing request (the wire
// copy is written from the string), as every real request's is.

const CODES = Uint8Array.from(urlAlphabet, (c) => c.charCodeAt(0));

function newIdPath(label: string, length: number, flatten: boolean, library: boolean, send: boolean): Variant {
  return {
    label,
    prepare(live, settled) {
      const wire = Buffer.alloc(live * length);
      const random = new Uint8Array(1 << 16);
      for (let i = 0; i < random.length; i++) random[i] = RANDOM[i]! & 63;
      settled();
      const named = new Map<string, Entry>();
      const slotted = new SlotTable<Entry>(SLOTS);
      let seq = 0;
      let r = 0;
      // The application's generator: unique by its first five characters (a counter), the rest random.
      const generate = (at: number): string => {
        let id = '';
        for (let j = 0; j < length; j++) {
          const value = j < 5 ? (seq >>> (6 * j)) & 63 : random[r++ & 0xffff]!;
          if (!send) wire[at + j] = CODES[value]!;
          id += urlAlphabet[value]!;
        }
        return id;
      };
      const register = (k: number): void => {
        const id = generate(k * length);
        if (id.length === 0 || id.length > 256) throw new Error('bad ID');
        if (flatten) id.charCodeAt(0);
        if (library) {
          const slot = slotOf(id);
          if (slot >= 0 && slotted.get(slot)?.correlationId === id) throw new Error('pending ID');
          if (named.size !== 0 && named.get(id) !== undefined) throw new Error('pending ID');
        }
        named.set(id, new Entry(id, PAYLOAD, new Owner(seq), seq++));
        // The request goes out with its ID in it: serialising reads the string.
        if (send) wire.write(id, k * length, 'latin1');
      };
      for (let k = 0; k < live; k++) register(k);
      let k = 0;
      return {
        churn(ops) {
          for (let i = 0; i < ops; i++) {
            const at = k * length;
            const id = wire.toString('latin1', at, at + length);
            if (named.get(id) === undefined) throw new Error('newId routing lost an entry');
            named.delete(id);
            register(k);
            if (++k === live) k = 0;
          }
        },
        dispose() {},
      };
    },
  };
}

// ---------------------------------------------------------------------------
// 9. Times kept relative to an epoch (small integers) against absolute
// Date.now() doubles, in request-shaped objects: requestedAt set by the
// constructor, respondedAt by answer(), as PendingRequest does. Per
// operation one request is made and answered, and kept for `live`
// operations. Three classes and three drivers, written out apart: V8 keeps
// a field's representation per class, and one double stored would change
// it for every later object of the class.

const clock = { now: (): number => Date.now() };
/** An epoch 2³¹ ms (≈ 24.9 days) before now: relative times no longer fit a small integer. */
const OLD_EPOCH_OFFSET = 2 ** 31 + 60_000;

class RelativeRequest {
  next: unknown = undefined;
  #response: unknown = undefined;
  #respondedAt = 0;
  constructor(
    readonly correlationId: string,
    readonly message: unknown,
    readonly requestedAt: number,
  ) {}
  answer(message: unknown, now: number): void {
    this.#response = message;
    this.#respondedAt = now;
  }
  get latency(): number {
    return this.#respondedAt - this.requestedAt + (this.#response === undefined ? 0 : 1);
  }
}

class AgedRequest {
  next: unknown = undefined;
  #response: unknown = undefined;
  #respondedAt = 0;
  constructor(
    readonly correlationId: string,
    readonly message: unknown,
    readonly requestedAt: number,
  ) {}
  answer(message: unknown, now: number): void {
    this.#response = message;
    this.#respondedAt = now;
  }
  get latency(): number {
    return this.#respondedAt - this.requestedAt + (this.#response === undefined ? 0 : 1);
  }
}

class AbsoluteRequest {
  next: unknown = undefined;
  #response: unknown = undefined;
  #respondedAt = 0;
  constructor(
    readonly correlationId: string,
    readonly message: unknown,
    readonly requestedAt: number,
  ) {}
  answer(message: unknown, now: number): void {
    this.#response = message;
    this.#respondedAt = now;
  }
  get latency(): number {
    return this.#respondedAt - this.requestedAt + (this.#response === undefined ? 0 : 1);
  }
}

const relativeTimes: Variant = {
  label: 'clock.now() - epoch (epoch: now)',
  prepare(live, settled) {
    const held = new Array<RelativeRequest | undefined>(live).fill(undefined);
    settled();
    const epoch = clock.now();
    const make = (k: number): void => {
      const r = new RelativeRequest(IDS[k & (RECENT - 1)]!, PAYLOAD, clock.now() - epoch);
      r.answer(PAYLOAD, clock.now() - epoch);
      held[k] = r;
    };
    for (let k = 0; k < live; k++) make(k);
    let k = 0;
    return {
      churn(ops) {
        for (let i = 0; i < ops; i++) {
          make(k);
          if (++k === live) k = 0;
        }
      },
      dispose() {
        sink = held[0]?.latency;
      },
    };
  },
};

const agedTimes: Variant = {
  label: 'clock.now() - epoch (epoch: 2³¹ ms ago)',
  prepare(live, settled) {
    const held = new Array<AgedRequest | undefined>(live).fill(undefined);
    settled();
    const epoch = clock.now() - OLD_EPOCH_OFFSET;
    const make = (k: number): void => {
      const r = new AgedRequest(IDS[k & (RECENT - 1)]!, PAYLOAD, clock.now() - epoch);
      r.answer(PAYLOAD, clock.now() - epoch);
      held[k] = r;
    };
    for (let k = 0; k < live; k++) make(k);
    let k = 0;
    return {
      churn(ops) {
        for (let i = 0; i < ops; i++) {
          make(k);
          if (++k === live) k = 0;
        }
      },
      dispose() {
        sink = held[0]?.latency;
      },
    };
  },
};

const absoluteTimes: Variant = {
  label: 'clock.now() (absolute doubles)',
  prepare(live, settled) {
    const held = new Array<AbsoluteRequest | undefined>(live).fill(undefined);
    settled();
    const make = (k: number): void => {
      const r = new AbsoluteRequest(IDS[k & (RECENT - 1)]!, PAYLOAD, clock.now());
      r.answer(PAYLOAD, clock.now());
      held[k] = r;
    };
    for (let k = 0; k < live; k++) make(k);
    let k = 0;
    return {
      churn(ops) {
        for (let i = 0; i < ops; i++) {
          make(k);
          if (++k === live) k = 0;
        }
      },
      dispose() {
        sink = held[0]?.latency;
      },
    };
  },
};

// ---------------------------------------------------------------------------
// 10. TimerLane against one setTimeout per exchange. Per operation the
// oldest exchange ends (its deadline is cancelled) and a new one is
// scheduled; none fires. Only the lane's constructor, add() and cancel()
// are used: its implementation is being rewritten behind that interface.

class LaneTarget {
  readonly deadline: number;
  constructor(deadline: number) {
    this.deadline = deadline;
  }
  onDeadline(): void {
    throw new Error('a deadline fired during the bench');
  }
}
type LaneHandle = ReturnType<TimerLane<LaneTarget>['add']>;

class TimeoutTarget {
  readonly timer: ReturnType<typeof setTimeout>;
  constructor(ms: number) {
    this.timer = setTimeout(() => this.onDeadline(), ms);
  }
  onDeadline(): void {
    throw new Error('a deadline fired during the bench');
  }
}

const timerLane: Variant = {
  label: 'TimerLane (one timer per duration)',
  prepare(live, settled) {
    const handles = new Array<LaneHandle | undefined>(live).fill(undefined);
    settled();
    const lane = new TimerLane<LaneTarget>(LONG_MS, systemClock, () => {});
    for (let k = 0; k < live; k++) handles[k] = lane.add(new LaneTarget(systemClock.now() + LONG_MS));
    let k = 0;
    return {
      churn(ops) {
        for (let i = 0; i < ops; i++) {
          if (!lane.cancel(handles[k]!)) throw new Error('timer lane: a deadline was not pending');
          handles[k] = lane.add(new LaneTarget(systemClock.now() + LONG_MS));
          if (++k === live) k = 0;
        }
      },
      dispose() {
        for (const handle of handles) if (handle !== undefined) lane.cancel(handle);
      },
    };
  },
};

const timeoutPerExchange: Variant = {
  label: 'setTimeout per exchange',
  prepare(live, settled) {
    const targets = new Array<TimeoutTarget | undefined>(live).fill(undefined);
    settled();
    for (let k = 0; k < live; k++) targets[k] = new TimeoutTarget(LONG_MS);
    let k = 0;
    return {
      churn(ops) {
        for (let i = 0; i < ops; i++) {
          clearTimeout(targets[k]!.timer);
          targets[k] = new TimeoutTarget(LONG_MS);
          if (++k === live) k = 0;
        }
      },
      dispose() {
        for (const t of targets) if (t !== undefined) clearTimeout(t.timer);
      },
    };
  },
};

// ---------------------------------------------------------------------------
// The suite

/**
 * Live entries for the churn workloads: 1 000 is the closed loop of the
 * project's one-request scenario (entries die young, tables fit ordinary
 * pages), 10 000 and 200 000 its routing backgrounds (entries outlive the
 * nursery, big tables live in large-object space).
 */
const SIZES = [1_000, 10_000, 200_000] as const;
/** Held IDs: 1 000 of them would not show the memory they keep. */
const ID_SIZES = [10_000, 200_000] as const;

function candidates(quick: boolean): Candidate[] {
  const sizes = quick ? [SIZES[0]] : SIZES;
  const idSizes = quick ? [ID_SIZES[0]] : ID_SIZES;
  const list: Candidate[] = [];
  const route = 'reply routed (look-up, check, release) + request registered (ID, entry)';
  for (const live of sizes) {
    list.push({ id: 'slot-table', title: 'SlotTable vs Map + nanoid', live, ops: 600_000, op: route, bespoke: slotRouting, plain: mapNanoid });
    list.push({ id: 'slot-table-secure', title: 'SlotTable vs Map + secureId', live, ops: 600_000, op: route, bespoke: slotRouting, plain: mapSecureId });
    list.push({ id: 'renewing-map', title: 'RenewingMap vs Map', live, ops: 600_000, op: route, bespoke: renewingRouting, plain: mapSecureId });
  }
  const answer = `answered ID added (60 s window, bound ${MAX_DUPLICATES}); 2 look-ups per 1 024`;
  list.push({ id: 'duplicate-window', title: 'DuplicateWindow vs 2-gen Map (slotted IDs)', live: MAX_DUPLICATES, ops: 1_500_000, op: answer, bespoke: windowGenerated, plain: windowMapGenerated });
  list.push({ id: 'duplicate-window-hashed', title: 'DuplicateWindow vs 2-gen Map (instance IDs)', live: MAX_DUPLICATES, ops: 1_000_000, op: answer, bespoke: windowHashed, plain: windowMapHashed });
  for (const live of sizes) {
    list.push({ id: 'open-set', title: 'OpenSet vs Set', live, ops: 1_500_000, op: 'a random member leaves, a new one joins', bespoke: openSet, plain: plainSet });
  }
  for (const live of idSizes) {
    list.push({ id: 'secure-id', title: 'secureId() vs nanoid()', live, ops: 1_000_000, op: 'one ID made and held for `live` operations', bespoke: secureIds, plain: nanoids });
  }
  list.push({
    id: 'snapshots',
    title: 'Result constructors vs literals',
    live: 20_000,
    ops: 600_000,
    op: 'one result with one answered entry, built in bursts of 20 000 kept until the next burst',
    bespoke: snapshotsByConstructor,
    plain: snapshotsByLiteral,
  });
  for (const live of sizes) {
    list.push({ id: 'captured-resolver', title: 'captured resolver vs arrow executor', live, ops: 1_000_000, op: 'oldest waiter settled, new one made, wait() awaited', bespoke: capturingWaiters, plain: closureWaiters });
  }
  const rope = (label: string, length: number, flatten: boolean, library: boolean, send = false): Variant => newIdPath(label, length, flatten, library, send);
  const newId = 'reply routed by a flat copy of the ID + newId()-made rope ID registered';
  const roped = quick ? 10_000 : 100_000;
  list.push({
    id: 'rope-flatten',
    title: 'charCodeAt(0), 21-char rope, Map only',
    live: roped,
    ops: 500_000,
    op: newId,
    bespoke: rope('flattened', ID_LENGTH, true, false),
    plain: rope('left a rope', ID_LENGTH, false, false),
  });
  list.push({
    id: 'rope-flatten-index',
    title: 'charCodeAt(0), 21-char rope, index path',
    live: roped,
    ops: 500_000,
    op: newId,
    bespoke: rope('flattened, then has() and the Map', ID_LENGTH, true, true),
    plain: rope('has() and the Map only', ID_LENGTH, false, true),
  });
  list.push({
    id: 'rope-flatten-short',
    title: 'charCodeAt(0), 16-char rope, index path',
    live: roped,
    ops: 500_000,
    op: newId,
    bespoke: rope('flattened, then has() and the Map', 16, true, true),
    plain: rope('has() and the Map only', 16, false, true),
  });
  list.push({
    id: 'rope-flatten-sent',
    title: 'charCodeAt(0), 16-char rope, index path, sent',
    live: roped,
    ops: 500_000,
    op: `${newId}, then written to the wire from the string`,
    bespoke: rope('flattened, has(), the Map, sent', 16, true, true, true),
    plain: rope('has(), the Map, sent', 16, false, true, true),
  });
  const timed = quick ? 10_000 : 200_000;
  const request = 'one request made, answered, held for `live` operations';
  list.push({ id: 'epoch-times', title: 'epoch-relative vs absolute times', live: timed, ops: 2_000_000, op: request, bespoke: relativeTimes, plain: absoluteTimes });
  list.push({ id: 'epoch-times-aged', title: 'epoch-relative (2³¹ ms on) vs absolute', live: timed, ops: 2_000_000, op: request, bespoke: agedTimes, plain: absoluteTimes });
  for (const live of sizes) {
    list.push({ id: 'timer-lane', title: 'TimerLane vs setTimeout each', live, ops: 1_000_000, op: 'oldest deadline cancelled, a new one added', bespoke: timerLane, plain: timeoutPerExchange });
  }
  return list;
}

export interface StructuresOptions {
  readonly quick: boolean;
  readonly rounds?: number | undefined;
  readonly only?: readonly string[] | undefined;
  readonly command: string;
  readonly log: (line: string) => void;
}

export async function runStructures(options: StructuresOptions): Promise<StructuresResults> {
  const { quick, log } = options;
  const rounds = options.rounds ?? (quick ? 3 : 11);
  const list = candidates(quick);
  const picked = list.filter((c) => options.only === undefined || options.only.some((o) => c.id === o || c.id.startsWith(`${o}-`)));
  const started = performance.now();
  const before = os.loadavg();
  const results: CandidateResult[] = [];
  for (const candidate of picked) {
    const result = await inChild(list.indexOf(candidate), rounds, quick);
    log(`  ${result.title}, ${result.live.toLocaleString('en-US')} live: ${fmtRate(result.speed.bespoke)} vs ${fmtRate(result.speed.plain)} ops/s (${result.speed.ratio.toFixed(2)}×)`);
    results.push(result);
  }
  return {
    version: 1,
    date: new Date().toISOString(),
    quick,
    command: options.command,
    rounds,
    ...(options.only === undefined ? {} : { only: options.only }),
    durationSeconds: (performance.now() - started) / 1000,
    machine: machine(),
    loadAverage: { before, after: os.loadavg() },
    rule: `keeps its place: median gain > ${GAIN}× and the bespoke rounds' interquartile range clear of the plain rounds' (ops/s: higher; bytes: lower)`,
    candidates: results,
  };
}

const CANDIDATE_FLAG = '--candidate=';

/**
 * Measures one candidate in a process of its own: both its variants share
 * that process, and nothing another candidate ran — compiled code, type
 * feedback shared by closures of one factory, heap left behind — can
 * favour either of them.
 */
function inChild(index: number, rounds: number, quick: boolean): Promise<CandidateResult> {
  const execArgv = process.execArgv.includes('--expose-gc') ? process.execArgv : ['--expose-gc', ...process.execArgv];
  const args = [...execArgv, fileURLToPath(import.meta.url), `${CANDIDATE_FLAG}${index}`, `--rounds=${rounds}`, ...(quick ? ['--quick'] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(out) as CandidateResult);
      else reject(new Error(`structures: candidate ${index} exited with ${code}`));
    });
  });
}

async function runChild(index: number, rounds: number, quick: boolean): Promise<void> {
  const candidate = candidates(quick)[index];
  if (candidate === undefined) throw new Error(`structures: no candidate ${index}`);
  observer.observe({ entryTypes: ['gc'] });
  const result = await measure(candidate, rounds, quick ? 0.05 : 1);
  observer.disconnect();
  process.stdout.write(JSON.stringify(result));
}

// ---------------------------------------------------------------------------
// Report

function fmtRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} k`;
  return n.toFixed(0);
}

function table(header: readonly string[], rows: readonly (readonly string[])[], right: readonly boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function structuresReport(results: StructuresResults): string {
  const name = (c: CandidateResult): string => `${c.title}, ${c.live.toLocaleString('en-US')} live`;
  const pair = ([a, b]: readonly [number, number]): string => `${a.toFixed(2)}–${b.toFixed(2)}`;
  const speed = table(
    ['candidate', 'bespoke ops/s', 'plain ops/s', 'ratio', 'paired', 'verdict'],
    results.candidates.map((c) => [name(c), fmtRate(c.speed.bespoke), fmtRate(c.speed.plain), `${c.speed.ratio.toFixed(2)}×`, pair(c.speed.paired), c.speed.verdict]),
    [false, true, true, true, true, false],
  );
  const memory = table(
    ['candidate', 'bespoke B/entry', 'plain B/entry', 'ratio', 'verdict'],
    results.candidates.map((c) => [name(c), c.memory.bespoke.toFixed(1), c.memory.plain.toFixed(1), `${c.memory.ratio.toFixed(2)}×`, c.memory.verdict]),
    [false, true, true, true, false],
  );
  const gcCell = (rounds: readonly Sample[], ms: number): string =>
    `${ms.toFixed(0)} ms (${median(rounds.map((s) => s.scavenges)).toFixed(0)}/${median(rounds.map((s) => s.markCompacts)).toFixed(0)})`;
  const gc = table(
    ['candidate', 'ops/round', 'bespoke GC', 'plain GC', 'bespoke', 'plain'],
    results.candidates.map((c) => [name(c), c.ops.toLocaleString('en-US'), gcCell(c.bespoke.rounds, c.gc.bespokeMs), gcCell(c.plain.rounds, c.gc.plainMs), c.bespoke.label, c.plain.label]),
    [false, true, true, true, false, false],
  );
  const load = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  return [
    `Structures: bespoke vs plain, ${results.rounds} interleaved rounds each (medians), Node ${results.machine['node']}, ${results.machine['cpus']} CPUs, load ${load(results.loadAverage.before)} → ${load(results.loadAverage.after)}, ${results.durationSeconds.toFixed(0)} s`,
    '',
    'Speed (ratio: bespoke / plain; paired: interquartile range of the per-round ratios)',
    speed,
    '',
    'Memory per live entry after a full GC (ratio: plain / bespoke)',
    memory,
    '',
    'GC per timed round, medians: time (scavenges/mark-compacts)',
    gc,
    '',
    `Rule: ${results.rule}.`,
  ].join('\n');
}

// ---------------------------------------------------------------------------
// Entry point: npm run bench:structures

const root = fileURLToPath(new URL('..', import.meta.url));

export function writeStructuresResults(results: StructuresResults): string {
  // Only a full run replaces the committed results.
  const file = `bench/results/structures${results.quick ? '-quick' : results.only !== undefined ? '-only' : ''}.json`;
  mkdirSync(`${root}bench/results`, { recursive: true });
  writeFileSync(`${root}${file}`, `${JSON.stringify(results, null, 1)}\n`);
  return file;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const option = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const quick = args.includes('--quick') || process.env['BENCH_QUICK'] === '1';
  const rounds = option('rounds') === undefined ? undefined : Math.max(1, Number(option('rounds')));
  const child = option('candidate');
  if (child !== undefined) {
    await runChild(Number(child), rounds ?? (quick ? 3 : 11), quick);
  } else {
    const log = (line: string): void => void process.stderr.write(`${line}\n`);
    const results = await runStructures({ quick, rounds, only: option('only')?.split(','), command: `npm run bench:structures -- ${args.join(' ')}`.trim(), log });
    process.stdout.write(`\n${structuresReport(results)}\n`);
    log(`wrote ${writeStructuresResults(results)}`);
  }
  void sink;
}
