import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './redis-server.js';

/** A NATS server the tests can reach; `stop()` stops it only if this helper started it. */
export interface TestNats {
  /** What `connect({ servers })` takes: `nats://host:port`. */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * The NATS server for tests: `NATS_URL` if set, else the local
 * 127.0.0.1:4222 if it greets with `INFO`, else a `nats-server` from PATH on
 * a free port, stopped again by `stop()`.
 */
export async function useNats(): Promise<TestNats> {
  const fromEnv = process.env['NATS_URL'];
  if (fromEnv) return { url: fromEnv, stop: async () => undefined };
  if (await greets(4222)) return { url: 'nats://127.0.0.1:4222', stop: async () => undefined };
  return startNatsServer();
}

/** Starts a nats-server of this test's own on a free loopback port. */
export async function startNatsServer(): Promise<TestNats> {
  const port = await freePort();
  const child: ChildProcess = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  const failed = once(child, 'error').then(([error]: unknown[]) => Promise.reject(error as Error));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };
  for (let i = 0; i < 100; i++) {
    const up = await Promise.race([greets(port), failed]);
    if (up) return { url: `nats://127.0.0.1:${port}`, stop };
    await sleep(50);
  }
  await stop();
  throw new Error(`nats-server on port ${port} did not greet with INFO`);
}

/** Whether something on 127.0.0.1:`port` speaks NATS: a server's first line is `INFO {…}`. */
export function greets(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let greeting = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk) => {
      greeting += chunk.toString();
      if (greeting.includes('\r\n')) done(greeting.startsWith('INFO '));
    });
  });
}
