// The child side of an echo worker's life: tell the runner it is ready,
// then stop — release its connections and delete what it created — when
// the runner says so or goes away (its IPC channel closes), so that no
// worker outlives a run, even one that crashed.

/** Messages between the runner and an echo worker. */
export type ToEcho = { readonly stop: true };
export type FromEcho = { readonly ready: true } | { readonly stopped: true };

/** The run's names, handed down by the runner in the environment. */
export function echoEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined) throw new Error(`echo worker started without ${name}: the runner (bench/e2e/index.ts) starts it`);
  return value;
}

export function serveUntilStopped(stop: () => Promise<void>): void {
  const send = (message: FromEcho): void => {
    if (process.connected) process.send!(message);
  };
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (stopping ??= withDeadline(stop())
      .catch((error: unknown) => console.error('echo worker: stopping failed', error))
      .finally(() => {
        send({ stopped: true });
        // Nothing else keeps the worker alive but the IPC channel: closing it lets the process end by itself.
        if (process.connected) process.disconnect();
      }));
  process.on('message', (message: ToEcho) => {
    if (message.stop) void shutdown();
  });
  process.on('disconnect', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
  send({ ready: true });
}

/** Stopping may not hang a worker whose runner is gone: after a few seconds it exits, cleaned up or not. */
function withDeadline(stopping: Promise<void>): Promise<void> {
  setTimeout(() => {
    console.error('echo worker: not stopped after 5 s, exiting');
    process.exit(1);
  }, 5_000).unref();
  return stopping;
}
