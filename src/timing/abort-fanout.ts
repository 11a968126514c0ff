import { RenewingMap } from '../structures/renewing-map.js';

/** Something that ends when a signal it is bound to aborts. */
export interface AbortTarget {
  /** Called once, with `signal.reason`, when the signal aborts. */
  onAbort(reason: unknown): void;
}

interface Group {
  readonly targets: Set<AbortTarget>;
  readonly listener: () => void;
}

/**
 * One `abort` listener per distinct signal, fanned out to every exchange
 * bound to it. A server-wide shutdown signal shared by a million exchanges
 * then carries one listener, not a million: no `MaxListenersExceededWarning`,
 * and binding or unbinding an exchange is O(1) where `removeEventListener`
 * would scan every listener on the signal.
 */
export class AbortFanout {
  /** Renewing: with a signal per request, a group comes and goes with every exchange. */
  readonly #groups = new RenewingMap<AbortSignal, Group>();

  /** Binds `target` to `signal` (which must not be aborted yet). */
  add(signal: AbortSignal, target: AbortTarget): void {
    let group = this.#groups.get(signal);
    if (group === undefined) {
      const targets = new Set<AbortTarget>();
      const listener = (): void => {
        this.#remove(signal, group!);
        for (const t of targets) t.onAbort(signal.reason);
      };
      group = { targets, listener };
      this.#groups.set(signal, group);
      signal.addEventListener('abort', listener, { once: true });
    }
    group.targets.add(target);
  }

  /** Unbinds `target`; the signal's listener goes with its last target. */
  delete(signal: AbortSignal, target: AbortTarget): void {
    const group = this.#groups.get(signal);
    if (group !== undefined && group.targets.delete(target) && group.targets.size === 0) {
      this.#remove(signal, group);
    }
  }

  #remove(signal: AbortSignal, group: Group): void {
    this.#groups.delete(signal);
    signal.removeEventListener('abort', group.listener);
  }
}
