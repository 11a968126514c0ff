/** The arithmetic the worker does, and the shapes of its jobs and answers. */

export const OPERATIONS = ['add', 'sub', 'mul', 'div'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** One job for the worker. `delayMs` fixes the worker's delay (for demos and tests). */
export interface Job {
  readonly op: Operation;
  readonly a: number;
  readonly b: number;
  readonly delayMs?: number;
}

/** The worker's reply: the job it answers, and its value or why there is none. */
export type Answer = { readonly job: Job; readonly value: number } | { readonly job: Job; readonly error: string };

/** Computes a job's answer. */
export function compute(job: Job): Answer {
  switch (job.op) {
    case 'add':
      return { job, value: job.a + job.b };
    case 'sub':
      return { job, value: job.a - job.b };
    case 'mul':
      return { job, value: job.a * job.b };
    case 'div':
      return job.b === 0 ? { job, error: 'division by zero' } : { job, value: job.a / job.b };
  }
}

/**
 * Reads a job from query parameters or a JSON body; throws a message fit for
 * a 400 answer.
 */
export function parseJob(input: Record<string, unknown>): Job {
  const { op, a, b, delay } = input;
  if (typeof op !== 'string' || !(OPERATIONS as readonly string[]).includes(op)) {
    throw new Error(`op must be one of ${OPERATIONS.join(', ')}`);
  }
  const job: { op: Operation; a: number; b: number; delayMs?: number } = { op: op as Operation, a: toNumber('a', a), b: toNumber('b', b) };
  if (delay !== undefined) {
    const delayMs = toNumber('delay', delay);
    if (delayMs < 0 || delayMs > 60_000) throw new Error('delay must be between 0 and 60000 ms');
    job.delayMs = delayMs;
  }
  return job;
}

export function describeJob(job: Job): string {
  return `${job.op}(${job.a}, ${job.b})`;
}

function toNumber(name: string, value: unknown): number {
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isFinite(number)) throw new Error(`${name} must be a finite number`);
  return number;
}
