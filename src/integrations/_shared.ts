import { InvalidArgumentError } from '../errors.js';
import { describe } from '../options.js';
import type { ReplyTarget } from './reply-target.js';

/**
 * Runs a compensation at most once per correlation ID: concurrent copies of
 * the same late reply share one run, and an ID whose compensation finished is
 * tagged so that later copies (redeliveries, a partner's retries) skip it.
 * The tag lives as long as the rollback tag (the controller's `rollbackTtl`).
 * @internal
 */
export class CompensateOnce<Res, C> {
  readonly #target: ReplyTarget<Res>;
  readonly #compensate: ((payload: Res, context: C) => unknown) | undefined;
  readonly #tag: string;
  readonly #running = new Map<string, Promise<boolean>>();

  constructor(target: ReplyTarget<Res>, compensate: ((payload: Res, context: C) => unknown) | undefined, tag: string) {
    this.#target = target;
    this.#compensate = compensate;
    this.#tag = tag;
  }

  /** Resolves `true` when this call ran the compensation, `false` when there is none or it already ran. */
  run(correlationId: string, payload: Res, context: C): Promise<boolean> {
    const compensate = this.#compensate;
    if (compensate === undefined) return Promise.resolve(false);
    const running = this.#running.get(correlationId);
    if (running !== undefined) return running.then(() => false);
    const run = (async () => {
      if (await this.#target.hasTag(correlationId, this.#tag)) return false;
      await compensate(payload, context);
      await this.#target.tag(correlationId, this.#tag);
      return true;
    })().finally(() => this.#running.delete(correlationId));
    this.#running.set(correlationId, run);
    return run;
  }
}

/** Throws unless `value` is a non-empty string. */
export function checkString(what: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty string, got ${describe(value)}`);
  }
  return value;
}

/** Throws unless `target` looks like a controller. */
export function checkTarget(target: unknown): void {
  const t = target as Partial<Record<string, unknown>> | null;
  if (typeof t !== 'object' || t === null || typeof t['registerResponse'] !== 'function' || typeof t['tag'] !== 'function' || typeof t['hasTag'] !== 'function') {
    throw new InvalidArgumentError(`controller must be an rrxc Controller, got ${describe(target)}`);
  }
}

