// The runner's side of the echo workers: one child process per broker,
// started with tsx, so that the reply is produced by another process — as
// in production, and so that the worker's CPU is not the client's.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Broker } from './config.js';
import type { FromEcho, ToEcho } from './echo-lifecycle.js';

export interface EchoWorker {
  readonly broker: Broker;
  /** Asks the worker to stop and waits for it to exit (killing it after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

/** How long a worker may take to compile (tsx) and connect. */
const READY_TIMEOUT_MS = 60_000;

const running = new Set<ChildProcess>();
// Whatever ends the runner — a crash included — ends its workers too. SIGTERM,
// not SIGKILL: a worker stops by deleting what it created on the broker, and
// gives itself a few seconds to (echo-lifecycle.ts).
process.on('exit', () => {
  for (const child of running) child.kill('SIGTERM');
});

export async function startEcho(broker: Broker, env: Readonly<Record<string, string>>): Promise<EchoWorker> {
  const child = fork(fileURLToPath(new URL(`./echo-${broker}.ts`, import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let timer: NodeJS.Timeout | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (message: FromEcho) => {
      if ('ready' in message) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`echo worker for ${broker} exited before it was ready (${signal ?? code})`)));
    // A broker that is not there makes its client retry forever: a run must fail instead of hanging.
    timer = setTimeout(() => reject(new Error(`echo worker for ${broker} not ready after ${READY_TIMEOUT_MS / 1000} s: is the broker up?`)), READY_TIMEOUT_MS);
  });
  try {
    await ready;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return {
    broker,
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      if (child.connected) child.send({ stop: true } satisfies ToEcho);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
