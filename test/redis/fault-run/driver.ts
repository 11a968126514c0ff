/**
 * The fault run's driver: starts a redis-server of its own and several
 * instance processes, opens exchanges on random owners, sends each reply to
 * random instances (some twice: copies), and injects faults meanwhile.
 * Everything that happens is in the event files of `dir`; see check.ts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventFile, type FaultEvent } from '../../helpers/fault-log.js';
import { FaultRedis } from '../../helpers/fault-redis.js';
import { uniquePrefix } from '../../helpers/redis-server.js';
import { LATE_COPY } from './check.js';
import type { Command } from './protocol.js';

const INSTANCE = fileURLToPath(new URL('./instance.ts', import.meta.url));

export type FaultKind = 'owner-kill' | 'redis-restart' | 'client-pause' | 'debug-sleep' | 'client-kill' | 'client-kill+owner-kill';

/** One round of faults, in seeded order; a longer run repeats it. */
export const FAULT_ROUND: readonly FaultKind[] = ['client-pause', 'debug-sleep', 'client-kill', 'owner-kill', 'redis-restart', 'client-kill+owner-kill'];

export interface RunOptions {
  readonly seed: number;
  /** How long traffic and faults run; draining and the audit come on top. */
  readonly durationMs: number;
  readonly instances: number;
  /** Where the event files go. */
  readonly dir: string;
  readonly leaseTtl: number;
  /** Progress lines. */
  readonly log: (line: string) => void;
}

/** A small seeded PRNG (mulberry32): the schedule of a run is its seed's. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One instance process. */
class Instance {
  #ref = 0;
  readonly #waiting = new Map<number, (reply: Record<string, unknown> | undefined) => void>();
  readonly ready: Promise<FaultEvent>;
  /** Exchanges opened here and not ended yet, by xid. */
  readonly open = new Set<string>();
  /** What the process reported over IPC (its file holds the same, and what came after a lost message). */
  readonly events: FaultEvent[] = [];
  dead = false;
  killing = false;
  instanceId = '';

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    let ready: (event: FaultEvent) => void;
    let failed: (error: Error) => void;
    this.ready = new Promise((resolve, reject) => ((ready = resolve), (failed = reject)));
    this.ready.catch(() => undefined);
    process.on('message', (message: { ref?: number; event?: FaultEvent }) => {
      if (message.event !== undefined) {
        if (message.event.k === 'ready') {
          this.instanceId = message.event.instanceId;
          ready(message.event);
        }
        if (message.event.k === 'ended') this.open.delete(message.event.xid);
        this.events.push(message.event);
      }
      if (typeof message.ref === 'number') {
        this.#waiting.get(message.ref)?.(message as Record<string, unknown>);
        this.#waiting.delete(message.ref);
      }
    });
    process.once('exit', () => {
      this.dead = true;
      failed(new Error(`instance ${name} exited before it was ready`));
      for (const resolve of this.#waiting.values()) resolve(undefined);
      this.#waiting.clear();
    });
  }

  get usable(): boolean {
    return !this.dead && !this.killing && this.instanceId !== '';
  }

  /** Sends a command; resolves with its answer, or `undefined` once the process is dead. */
  call(command: DistributiveOmit<Command, 'ref'>): Promise<Record<string, unknown> | undefined> {
    if (this.dead || !this.process.connected) return Promise.resolve(undefined);
    const ref = ++this.#ref;
    return new Promise((resolve) => {
      this.#waiting.set(ref, resolve);
      try {
        this.process.send({ ...command, ref } as Command);
      } catch {
        this.#waiting.delete(ref);
        resolve(undefined);
      }
    });
  }

  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = once(this.process, 'exit');
    this.process.kill('SIGKILL');
    await exited;
  }
}

/** An instance holding more memory than this is killed by the watchdog. */
const MAX_RSS = 1_500_000_000;

/** Resident memory of a process, from /proc (0 where there is none). */
function residentBytes(pid: number | undefined): number {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A run in progress; `dispose()` kills whatever is still running (also after a failure). */
export class FaultRun {
  readonly #options: RunOptions;
  readonly #random: () => number;
  readonly #driverLog: EventFile;
  readonly #instances: Instance[] = [];
  #redis: FaultRedis | undefined;
  #prefix = '';
  #names = 0;
  #xids = 0;
  #rids = 0;
  #fids = 0;
  #chosen = 0;
  readonly #outstanding = new Set<Promise<unknown>>();
  /** IDs by owner instance name, and what IPC told so far (for the audit phase). */
  readonly #owners = new Map<string, string>();
  readonly #killed = new Set<string>();
  readonly #allIds: string[] = [];
  #maxTimeout = 0;
  #disposed: Promise<void> | undefined;

  constructor(options: RunOptions) {
    this.#options = options;
    this.#random = prng(options.seed);
    this.#driverLog = new EventFile(options.dir, 'driver');
  }

  get redisUrl(): string | undefined {
    return this.#redis?.url;
  }

  async run(): Promise<void> {
    const { log, durationMs } = this.#options;
    this.#redis = await FaultRedis.start();
    this.#prefix = uniquePrefix('fault-run');
    log(`redis-server on port ${this.#redis.port}, ${this.#options.instances} instances, seed ${this.#options.seed}, ${durationMs} ms`);
    await Promise.all(Array.from({ length: this.#options.instances }, () => this.#spawn()));

    const started = Date.now();
    const watchdog = new AbortController();
    const watching = this.#watchdog(watchdog.signal);
    const traffic = this.#traffic(started + durationMs);
    const faults = this.#faults(started, durationMs);
    await Promise.all([traffic, faults]);

    // Drain: every reply call settles (each is bounded, ≈ 15 s at worst), every exchange ends.
    const drainStart = Date.now();
    await Promise.race([Promise.all([...this.#outstanding]), sleep(12_000)]);
    const exchangesEnd = Date.now() + this.#maxTimeout + 1_000;
    while (Date.now() < exchangesEnd && this.#instances.some((i) => !i.dead && i.open.size > 0)) await sleep(100);
    log(`drained in ${Date.now() - drainStart} ms; ${this.#outstanding.size} reply calls still open`);

    await this.#lateCopies();
    await this.#audit();
    watchdog.abort();
    await watching;
  }

  /**
   * Pings every instance twice a second: one whose event loop stays stuck
   * for 3 s is reported (`hung`, once). One whose memory passes
   * {@link MAX_RSS} is killed (`runaway`), so that a bug cannot take the
   * shared machine down. To see where an instance is stuck, repeat the seed
   * with `node --prof` in the instances' execArgv and `node --prof-process`.
   */
  async #watchdog(signal: AbortSignal): Promise<void> {
    const silentSince = new Map<Instance, number>();
    const reported = new Set<Instance>();
    while (!signal.aborted) {
      for (const instance of this.#instances) {
        if (!instance.usable || silentSince.has(instance)) continue;
        const sent = Date.now();
        silentSince.set(instance, sent);
        void instance.call({ op: 'ping' }).then((answer) => {
          silentSince.delete(instance);
          if (reported.delete(instance) && answer !== undefined) this.#record({ k: 'unhung', name: instance.name, silentMs: Date.now() - sent });
        });
      }
      for (const instance of this.#instances) {
        if (instance.dead || instance.killing) continue;
        const rss = residentBytes(instance.process.pid);
        if (rss <= MAX_RSS) continue;
        this.#record({ k: 'runaway', name: instance.name, rss });
        this.#options.log(`instance ${instance.name} holds ${Math.round(rss / 1e6)} MB: killed`);
        void this.#kill(instance);
      }
      for (const [instance, since] of silentSince) {
        const silent = Date.now() - since;
        if (silent < 3_000 || reported.has(instance) || !instance.usable) continue;
        reported.add(instance);
        this.#record({ k: 'hung', name: instance.name, silentMs: silent });
        this.#options.log(`instance ${instance.name} silent for ${silent} ms`);
      }
      await sleep(500);
    }
  }

  /** Kills every process and the redis-server; idempotent, never throws. */
  dispose(): Promise<void> {
    return (this.#disposed ??= this.#dispose());
  }

  async #dispose(): Promise<void> {
    await Promise.all(
      this.#instances.map(async (instance) => {
        if (instance.dead) return;
        const closed = instance.call({ op: 'close' });
        await Promise.race([closed, sleep(3_000)]);
        await instance.kill().catch(() => undefined);
      }),
    );
    await this.#redis?.kill().catch(() => undefined);
    this.#driverLog.close();
  }

  /** SIGKILLs everything at once: for process exit. */
  killAllNow(): void {
    for (const instance of this.#instances) if (!instance.dead) instance.process.kill('SIGKILL');
    this.#redis?.killNow();
  }

  #record(body: Parameters<EventFile['record']>[0]): void {
    this.#driverLog.record(body);
  }

  #live(): Instance[] {
    return this.#instances.filter((i) => i.usable);
  }

  #pick<T>(items: readonly T[]): T | undefined {
    return items.length === 0 ? undefined : items[Math.floor(this.#random() * items.length)];
  }

  async #spawn(): Promise<Instance> {
    const name = `i${++this.#names}`;
    const { dir, leaseTtl } = this.#options;
    const err = openSync(join(dir, `${name}.stderr`), 'a');
    const child = fork(INSTANCE, [], {
      // A runaway heap fails fast rather than taking the machine (the watchdog bounds the rest: buffers, typed arrays).
      // RRXC_FAULT_PROF=1: V8 tick logs per instance (`node --prof-process <dir>/<name>.v8.log` shows where one hung).
      execArgv: [
        '--import',
        'tsx',
        '--max-old-space-size=512',
        ...(process.env['RRXC_FAULT_PROF'] === '1' ? ['--prof', '--no-logfile-per-isolate', `--logfile=${join(dir, `${name}.v8.log`)}`] : []),
      ],
      env: { ...process.env, REDIS_URL: this.#redis!.url, RRXC_PREFIX: this.#prefix, FR_NAME: name, FR_DIR: dir, FR_LEASE_TTL: String(leaseTtl) },
      stdio: ['ignore', err, err, 'ipc'],
    });
    const instance = new Instance(name, child);
    this.#instances.push(instance);
    this.#record({ k: 'spawned', name, pid: child.pid ?? -1 });
    await instance.ready;
    return instance;
  }

  async #traffic(until: number): Promise<void> {
    while (Date.now() < until) {
      const owner = this.#pick(this.#live());
      if (owner !== undefined) this.#track(this.#exchange(owner));
      await sleep(25 + this.#random() * 60);
    }
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch((error: unknown) => this.#options.log(`driver error: ${String(error)}`)).finally(() => this.#outstanding.delete(tracked));
    this.#outstanding.add(tracked);
  }

  async #exchange(owner: Instance): Promise<void> {
    const r = this.#random;
    const xid = `x${++this.#xids}`;
    const count = 1 + Math.floor(r() * 3);
    const chosen = Array.from({ length: count }, () => (r() < 0.35 ? `fr${this.#options.seed}-${++this.#chosen}` : null));
    const timeout = Math.round(300 + r() * 2_200);
    this.#maxTimeout = Math.max(this.#maxTimeout, timeout);
    // The copies of each reply, decided now so that the schedule is the seed's.
    const plans = chosen.map((id) => {
      const roll = r();
      const copies = roll < 0.06 ? 0 : roll < 0.7 ? 1 : 2;
      // Chosen IDs: not before their ownership record can be in Redis (the documented registration race).
      const first = (id === null ? 5 : 60) + r() * timeout * 1.3;
      const second = r() < 0.5 ? first : first + r() * 1_500;
      return [first, second].slice(0, copies).map((delay) => Math.round(delay));
    });
    owner.open.add(xid);
    const answer = await owner.call({ op: 'open', xid, timeout, chosen });
    const ids = answer?.['ids'] as string[] | undefined;
    if (ids === undefined) return; // the owner died meanwhile
    ids.forEach((id, i) => {
      this.#owners.set(id, owner.name);
      this.#allIds.push(id);
      plans[i]!.forEach((delay, copy) => this.#track(this.#copy(id, copy + 1, delay, owner)));
    });
  }

  async #copy(id: string, copy: number, delay: number, owner: Instance): Promise<void> {
    await sleep(delay);
    // A concurrent second copy goes to another instance than the first: two consumers at once.
    const live = this.#live();
    const target = this.#pick(live.length > 1 && copy === 2 ? live.filter((i) => i !== owner) : live);
    if (target === undefined) return;
    await target.call({ op: 'reply', rid: ++this.#rids, id, copy });
  }

  async #faults(started: number, durationMs: number): Promise<void> {
    const rounds = Math.max(1, Math.round(durationMs / 36_000));
    const plan: FaultKind[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = [...FAULT_ROUND];
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(this.#random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      plan.push(...order);
    }
    const spacing = durationMs / (plan.length + 1);
    for (let i = 0; i < plan.length; i++) {
      const at = started + spacing * (i + 0.6);
      if (Date.now() < at) await sleep(at - Date.now());
      await this.#inject(plan[i]!);
    }
  }

  async #inject(kind: FaultKind): Promise<void> {
    const fid = ++this.#fids;
    const redis = this.#redis!;
    const { log } = this.#options;
    const begin = (target?: string, detail?: string): void =>
      this.#record({ k: 'fault', fault: kind, fid, phase: 'start', ...(target !== undefined ? { target } : {}), ...(detail !== undefined ? { detail } : {}) });
    const end = (detail?: string): void => this.#record({ k: 'fault', fault: kind, fid, phase: 'end', ...(detail !== undefined ? { detail } : {}) });
    const t0 = Date.now();
    switch (kind) {
      case 'client-pause':
        begin();
        await redis.clientPause(2_000).catch((e: unknown) => log(`CLIENT PAUSE failed: ${String(e)}`));
        await sleep(2_000);
        end();
        break;
      case 'debug-sleep':
        begin();
        await redis.debugSleep(3).catch((e: unknown) => log(`DEBUG SLEEP failed: ${String(e)}`));
        end();
        break;
      case 'client-kill': {
        const target = this.#busiest();
        if (target === undefined) return;
        begin(target.name);
        const killed = await redis.killCommandConnection(`fr-${target.name}`).catch(() => -1);
        end(`killed ${killed}`);
        break;
      }
      case 'owner-kill': {
        const target = this.#busiest();
        if (target === undefined) return;
        begin(target.name);
        await this.#kill(target);
        await this.#respawn();
        end();
        break;
      }
      case 'client-kill+owner-kill': {
        // Issue #12, item 1: the owner delivers while its command connection is down, then dies.
        const target = this.#busiest();
        if (target === undefined) return;
        begin(target.name);
        const killed = await redis.killCommandConnection(`fr-${target.name}`).catch(() => -1);
        await sleep(150 + this.#random() * 300);
        await this.#kill(target);
        await this.#respawn();
        end(`killed ${killed} connection(s) first`);
        break;
      }
      case 'redis-restart': {
        begin();
        await redis.kill();
        const down = Math.round(300 + this.#random() * 1_200);
        await sleep(down);
        await redis.start();
        end(`down ${down} ms`);
        break;
      }
    }
    log(`fault ${fid} ${kind} took ${Date.now() - t0} ms`);
  }

  /** A fresh instance in place of a killed one; one that fails to start is logged (its stderr is in the run's directory), and the run goes on. */
  async #respawn(): Promise<void> {
    await this.#spawn().catch((error: unknown) => this.#options.log(`a fresh instance did not start: ${String(error)}`));
  }

  /** The live instance with the most open exchanges (a kill there hurts most). */
  #busiest(): Instance | undefined {
    const live = this.#live();
    if (live.length < 2) return undefined;
    const most = Math.max(...live.map((i) => i.open.size));
    return this.#pick(live.filter((i) => i.open.size === most));
  }

  async #kill(target: Instance): Promise<void> {
    target.killing = true;
    this.#killed.add(target.name);
    await target.kill();
    this.#record({ k: 'killed', name: target.name });
  }

  /**
   * After the traffic: a late copy to a non-owner for every ID whose owner
   * was killed, and for a sample of the others — the copy of issue #12 item 1
   * (a delivered reply of a crashed owner must not become `rolled-back`).
   */
  async #lateCopies(): Promise<void> {
    const candidates = this.#allIds.filter((id) => this.#killed.has(this.#owners.get(id) ?? ''));
    const others = this.#allIds.filter((id) => !this.#killed.has(this.#owners.get(id) ?? ''));
    for (let i = 0; i < 60 && others.length > 0; i++) candidates.push(others.splice(Math.floor(this.#random() * others.length), 1)[0]!);
    const calls = candidates.map(async (id) => {
      const live = this.#live().filter((i) => i.name !== this.#owners.get(id));
      const target = this.#pick(live);
      if (target !== undefined) await target.call({ op: 'reply', rid: ++this.#rids, id, copy: LATE_COPY });
    });
    await Promise.race([Promise.all(calls), sleep(10_000)]);
    this.#options.log(`late copies: ${candidates.length}`);
  }

  async #audit(): Promise<void> {
    const auditor = this.#live()[0];
    if (auditor === undefined) return;
    for (let i = 0; i < this.#allIds.length; i += 500) {
      await Promise.race([auditor.call({ op: 'audit', ids: this.#allIds.slice(i, i + 500) }), sleep(5_000)]);
    }
  }
}
