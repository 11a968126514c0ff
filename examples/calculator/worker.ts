import { compute, type Answer, type Job } from './calculator.js';

/**
 * The calculator worker: answers each job after a random delay of up to
 * `maxDelay` ms (or the job's own `delayMs`), so that some answers come after
 * the HTTP handler stopped waiting.
 */
export class Worker {
  readonly #maxDelay: number;
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;

  constructor(maxDelay: number) {
    this.#maxDelay = maxDelay;
  }

  /** Computes `job` and hands the answer to `reply` after the delay. */
  handle(job: Job, reply: (answer: Answer) => void): void {
    if (this.#stopped) return;
    const delay = job.delayMs ?? Math.round(Math.random() * this.#maxDelay);
    const answer = compute(job);
    if (delay === 0) {
      reply(answer);
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      reply(answer);
    }, delay);
    this.#timers.add(timer);
  }

  /** Drops the jobs still waiting for their delay. */
  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}
