import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { nanoid } from 'nanoid';

/** A Redis the tests can reach; `stop()` stops it only if this helper started it. */
export interface TestRedis {
  readonly url: string;
  stop(): Promise<void>;
}

/** A redis-server this process started on a port of its own, which a test may stop and start again. */
export interface OwnRedisServer extends TestRedis {
  readonly port: number;
  /** Starts it again on the same port (after `stop()`): an empty Redis, as after a crash without persistence. */
  start(): Promise<void>;
}

/**
 * The Redis for tests: `REDIS_URL` if set, else the local 127.0.0.1:6379 if
 * it answers PING, else a `redis-server` from PATH on a free port, stopped
 * again by `stop()`.
 */
export async function useRedis(): Promise<TestRedis> {
  const fromEnv = process.env['REDIS_URL'];
  if (fromEnv) return { url: fromEnv, stop: async () => undefined };
  if (await answersPing(6379)) return { url: 'redis://127.0.0.1:6379', stop: async () => undefined };
  return startRedisServer();
}

/** Starts a redis-server of this test's own on a free port, without persistence. */
export async function startRedisServer(): Promise<OwnRedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const server: OwnRedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      if (child !== undefined) return;
      const started = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      child = started;
      started.once('exit', () => {
        if (child === started) child = undefined;
      });
      for (let i = 0; i < 100; i++) {
        if (await answersPing(port)) return;
        await sleep(50);
      }
      throw new Error(`redis-server on port ${port} did not answer PING`);
    },
    async stop() {
      const running = child;
      if (running === undefined || running.exitCode !== null) return;
      child = undefined;
      const exited = once(running, 'exit');
      running.kill('SIGKILL');
      await exited;
    },
  };
  await server.start();
  return server;
}

/** A key prefix no other test (or run) uses. */
export function uniquePrefix(name: string): string {
  return `rrxc-test:${name}:${nanoid(8)}:`;
}

/** Whether something on 127.0.0.1:`port` answers a Redis PING. */
export function answersPing(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}
