/**
 * The fault run's event log: every party (the driver, each instance process)
 * appends its events to a file of its own, one JSON object per line, written
 * and fsync'd synchronously, so that a process killed with SIGKILL leaves
 * every event up to its death. Instances also send each event to the driver
 * over IPC; the files are what the check reads.
 */
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** What a forwarder's registerResponse (through the reply handler) ended with. */
export interface ReplyError {
  readonly name?: string;
  readonly code?: string;
  readonly failure?: string;
  readonly message: string;
}

/** One event; `t` is wall-clock ms with sub-ms precision (one machine: comparable across processes). */
export type FaultEvent = {
  /** Who wrote it: an instance name (`i3`) or `driver`. */
  readonly inst: string;
  /** Per-writer sequence number. */
  readonly seq: number;
  readonly t: number;
} & (
  | { readonly k: 'ready'; readonly instanceId: string; readonly pid: number }
  // The owner's side.
  | { readonly k: 'registered'; readonly xid: string; readonly ids: readonly string[]; readonly chosen: readonly boolean[]; readonly timeout: number }
  | { readonly k: 'delivered'; readonly id: string; readonly copy: number; readonly by: string }
  | { readonly k: 'delivered-ch'; readonly id: string; readonly forwarded: boolean }
  | {
      readonly k: 'ended';
      readonly xid: string;
      readonly status: string;
      readonly reason?: string;
      readonly answered: readonly string[];
      readonly unanswered: readonly string[];
      readonly committed?: readonly string[];
      readonly undecided?: readonly string[];
    }
  | { readonly k: 'rollback-hook'; readonly ids: readonly string[] }
  | { readonly k: 'rollback-tagged'; readonly ids: readonly string[] }
  | { readonly k: 'redis-error'; readonly operation: string; readonly ids: readonly string[]; readonly message?: string }
  | { readonly k: 'store-error'; readonly operation?: string; readonly ids: readonly string[]; readonly message?: string }
  | { readonly k: 'conflict'; readonly id: string }
  | { readonly k: 'lease-lost' }
  // The forwarder's side.
  | { readonly k: 'reply-start'; readonly rid: number; readonly id: string; readonly copy: number }
  | {
      readonly k: 'reply-result';
      readonly rid: number;
      readonly id: string;
      readonly copy: number;
      readonly outcome: string;
      readonly action: string;
      readonly compensated: boolean;
      readonly error?: ReplyError;
    }
  | { readonly k: 'compensate'; readonly id: string; readonly copy: number }
  | { readonly k: 'audit'; readonly id: string; readonly rolledBack?: boolean; readonly answered?: boolean; readonly error?: ReplyError }
  // The driver's side.
  | { readonly k: 'fault'; readonly fault: string; readonly fid: number; readonly phase: 'start' | 'end'; readonly target?: string; readonly detail?: string }
  | { readonly k: 'spawned'; readonly name: string; readonly pid: number }
  | { readonly k: 'killed'; readonly name: string }
  /** An instance that did not answer a ping for a while: its event loop is stuck. */
  | { readonly k: 'hung'; readonly name: string; readonly silentMs: number }
  /** An instance killed by the watchdog for holding too much memory. */
  | { readonly k: 'runaway'; readonly name: string; readonly rss: number }
  | { readonly k: 'unhung'; readonly name: string; readonly silentMs: number }
);

/** Distributes over the union, so that a literal of one variant checks. */
type WithoutStamp<T> = T extends unknown ? Omit<T, 'inst' | 'seq' | 't'> : never;
export type FaultEventBody = WithoutStamp<FaultEvent>;

/** Wall-clock ms with sub-ms precision. */
export const now = (): number => performance.timeOrigin + performance.now();

/** Appends events to `<dir>/<inst>.jsonl`, each write fsync'd before `record` returns. */
export class EventFile {
  readonly #fd: number;
  #seq = 0;

  constructor(
    dir: string,
    readonly inst: string,
  ) {
    this.#fd = openSync(join(dir, `${inst}.jsonl`), 'a');
  }

  record(body: FaultEventBody): FaultEvent {
    const event = { inst: this.inst, seq: ++this.#seq, t: now(), ...body } as FaultEvent;
    writeSync(this.#fd, `${JSON.stringify(event)}\n`);
    fsyncSync(this.#fd);
    return event;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** Every event of every file in `dir`, in time order. A torn last line (a kill mid-write) is skipped. */
export function readEvents(dir: string): FaultEvent[] {
  const events: FaultEvent[] = [];
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.jsonl'))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        events.push(JSON.parse(line) as FaultEvent);
      } catch {
        // the line a SIGKILL cut short
      }
    }
  }
  return events.sort((a, b) => a.t - b.t || a.seq - b.seq);
}

/** What an error tells, as plain JSON. */
export function describeError(error: unknown): ReplyError {
  if (error instanceof Error) {
    const { code, failure } = error as { code?: unknown; failure?: unknown };
    return {
      name: error.name,
      ...(typeof code === 'string' ? { code } : {}),
      ...(typeof failure === 'string' ? { failure } : {}),
      message: error.message.slice(0, 300),
    };
  }
  return { message: String(error).slice(0, 300) };
}
