/**
 * A redis-server of the fault-run test's own, which faults can be injected
 * into: SIGKILL and an empty restart on the same port, `CLIENT PAUSE`,
 * `DEBUG SLEEP` (enabled for local connections only, which the shared
 * helper's server refuses), and `CLIENT KILL` of one named connection.
 * Never the shared Redis on 6379: always a fresh port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { answersPing, freePort } from './redis-server.js';

export class FaultRedis {
  readonly url: string;
  #child: ChildProcess | undefined;

  private constructor(readonly port: number) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  static async start(): Promise<FaultRedis> {
    const port = await freePort();
    if (port === 6379) throw new Error('refusing to run faults on the shared port 6379');
    const server = new FaultRedis(port);
    await server.start();
    return server;
  }

  /** Whether redis-server is running right now. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Starts it (again): an empty Redis, no persistence. */
  async start(): Promise<void> {
    if (this.#child !== undefined) return;
    const started = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'local', '--protected-mode', 'no'],
      { stdio: 'ignore' },
    );
    this.#child = started;
    started.once('exit', () => {
      if (this.#child === started) this.#child = undefined;
    });
    for (let i = 0; i < 200; i++) {
      if (await answersPing(this.port, 200)) return;
      await sleep(25);
    }
    throw new Error(`redis-server on port ${this.port} did not answer PING`);
  }

  /** SIGKILL: nothing is saved. */
  async kill(): Promise<void> {
    const running = this.#child;
    if (running === undefined || running.exitCode !== null) return;
    this.#child = undefined;
    const exited = once(running, 'exit');
    running.kill('SIGKILL');
    await exited;
  }

  /** SIGKILL at once, not waiting: for process exit. */
  killNow(): void {
    this.#child?.kill('SIGKILL');
  }

  /** A fresh admin connection for one fault (a blocking DEBUG SLEEP must not hold up the others). */
  #connection(): Redis {
    const redis = new Redis(this.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: false, retryStrategy: () => null });
    redis.on('error', () => undefined);
    return redis;
  }

  async #withConnection<T>(run: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = this.#connection();
    try {
      await redis.ping().catch(async () => {
        await once(redis, 'ready');
      });
      return await run(redis);
    } finally {
      redis.disconnect();
    }
  }

  /** `CLIENT PAUSE ms` (ALL): every client's commands wait. Resolves when Redis accepted it. */
  clientPause(ms: number): Promise<unknown> {
    return this.#withConnection((redis) => redis.call('CLIENT', 'PAUSE', String(ms)));
  }

  /** `DEBUG SLEEP s`: Redis is blocked; resolves when it woke up. */
  debugSleep(seconds: number): Promise<unknown> {
    return this.#withConnection((redis) => redis.call('DEBUG', 'SLEEP', String(seconds)));
  }

  /**
   * `CLIENT KILL ID` of every non-subscriber connection named `name`: the
   * command connection of one instance. Answers how many were killed.
   */
  killCommandConnection(name: string): Promise<number> {
    return this.#withConnection(async (redis) => {
      const list = String(await redis.call('CLIENT', 'LIST'));
      const ids = list
        .split('\n')
        .map((line) => Object.fromEntries(line.trim().split(' ').map((field) => field.split('=') as [string, string])))
        .filter((client) => client['name'] === name && client['sub'] === '0' && client['psub'] === '0' && !String(client['flags']).includes('P'))
        .map((client) => client['id']!);
      let killed = 0;
      for (const id of ids) killed += Number(await redis.call('CLIENT', 'KILL', 'ID', id));
      return killed;
    });
  }
}
