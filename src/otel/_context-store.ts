import { AsyncLocalStorage } from 'node:async_hooks';
import { context, type Context } from '@opentelemetry/api';

/**
 * The store rrxc/otel binds to the exchange channel's `start`: an
 * `AsyncLocalStorage` to `bindStore()`, whose `run()` — what
 * `channel.runStores()` calls for each bound store — enters the context
 * through the OpenTelemetry API. So the operation of `synchronize()` runs
 * with the exchange span active in whichever context manager the
 * application registered, without reaching into that manager's private
 * storage. With no manager that carries context across `await`
 * (`AsyncLocalStorageContextManager`), only the synchronous part sees it.
 */
export class ContextStore extends AsyncLocalStorage<Context> {
  override run<R, TArgs extends unknown[]>(store: Context, callback: (...args: TArgs) => R, ...args: TArgs): R {
    return context.with(store, callback, undefined, ...args);
  }

  /** The active OpenTelemetry context: what this store holds, as far as anyone asks it. */
  override getStore(): Context {
    return context.active();
  }
}
