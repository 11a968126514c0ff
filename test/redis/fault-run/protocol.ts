/** What the driver asks an instance process (test/redis/fault-run/instance.ts) over IPC. */
export type Command =
  /** Opens an exchange with one request per entry: `null` for a generated ID, else the ID the application chose. */
  | { op: 'open'; ref: number; xid: string; timeout: number; chosen: (string | null)[] }
  /** Receives copy `copy` of the reply to `id`, as a queue consumer would (createReplyHandler). */
  | { op: 'reply'; ref: number; rid: number; id: string; copy: number }
  /** Asks isRolledBack() for each ID. */
  | { op: 'audit'; ref: number; ids: string[] }
  /** Answered at once: the driver's watchdog. */
  | { op: 'ping'; ref: number }
  | { op: 'close'; ref: number };

/** The reply message: which copy, received by which instance. */
export interface ReplyPayload {
  readonly id: string;
  readonly copy: number;
  readonly by: string;
}
