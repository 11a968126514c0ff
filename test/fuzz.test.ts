import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Controller, MemoryTagStore, RrxcError, type Exchange } from '../src/index.js';
import { createCallbackListener, createReplyHandler, fromHeader, fromPath } from '../src/integrations/index.js';
import { RedisBackplane, RedisTagStore } from '../src/redis/index.js';
import { ManualClock } from './helpers/manual-clock.js';

// Every public method, given anything at all for each argument, either
// answers or fails with an RrxcError that carries its code — never a bare
// TypeError from deep inside. Option objects are fuzzed key by key, with
// the real option names (and a stray one) so that each value check is reached.

const RUNS = Number(process.env['RRXC_FUZZ_RUNS'] ?? 300);
const anything = fc.anything({ withNullPrototype: true, withBigInt: true, withBoxedValues: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true });

function optionsOf(keys: readonly string[]): fc.Arbitrary<unknown> {
  return fc.oneof(anything, fc.dictionary(fc.constantFrom(...keys, 'notAnOption'), anything, { maxKeys: 4 }));
}

const CONTROLLER_KEYS = ['rollbackTag', 'rollbackTtl', 'maxTags', 'duplicateWindow', 'maxDuplicates', 'maxPendingRequests', 'timeout', 'newId', 'maxIdLength', 'tagStore', 'storeTimeout', 'backplane', 'onRollback', 'clock'];

/** Fails the property unless `call` answers or throws (or rejects with) an RrxcError with a code. */
async function answersOrFailsCoded(call: () => unknown): Promise<void> {
  let outcome: unknown;
  try {
    outcome = call();
    if (outcome instanceof Promise) await outcome;
  } catch (error) {
    expect(error).toBeInstanceOf(RrxcError);
    expect((error as RrxcError).code).toMatch(/^ERR_RRXC_/);
  }
}

function withController(run: (controller: Controller, exchange: Exchange) => Promise<void>): () => Promise<void> {
  return async () => {
    const controller = new Controller({ clock: new ManualClock() });
    try {
      await run(controller, controller.createExchange());
    } finally {
      await controller.close();
    }
  };
}

describe('every public method, given anything, answers or fails with a coded RrxcError', () => {
  it('new Controller(options)', async () => {
    await fc.assert(
      fc.asyncProperty(optionsOf(CONTROLLER_KEYS), async (options) => {
        let made: Controller | undefined;
        await answersOrFailsCoded(() => (made = new Controller(options as never)));
        await made?.close();
      }),
      { numRuns: RUNS },
    );
  });

  it('the controller\'s methods', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('createExchange', 'registerResponse', 'synchronize', 'tag', 'untag', 'hasTag', 'isRolledBack', 'getExchange', 'hasRequest', 'requestAge'),
        fc.tuple(optionsOf(['signal', 'timeout', 'id', 'correlationId', 'message', 'overwrite', 'ttl']), anything, optionsOf(['ttl'])),
        (method, args) =>
          withController(async (controller) => {
            await answersOrFailsCoded(() => (controller[method] as (...a: unknown[]) => unknown)(...args));
          })(),
      ),
      { numRuns: RUNS },
    );
  });

  it('the exchange\'s methods', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('registerRequest', 'run', 'getRequest', 'getResponse', 'hasRequest', 'requestAge'),
        fc.oneof(optionsOf(['correlationId', 'message']), anything),
        (method, argument) =>
          withController(async (_, exchange) => {
            await answersOrFailsCoded(() => (exchange[method] as (a: unknown) => unknown)(argument));
          })(),
      ),
      { numRuns: RUNS },
    );
  });

  it('new MemoryTagStore(options)', async () => {
    await fc.assert(
      fc.asyncProperty(optionsOf(['maxTags', 'clock']), async (options) => answersOrFailsCoded(() => new MemoryTagStore(options as never))),
      { numRuns: RUNS },
    );
  });

  it('the integrations\' factories', async () => {
    const controller = new Controller();
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(createReplyHandler, createCallbackListener),
          anything,
          optionsOf(['getCorrelationId', 'getPayload', 'getRequeues', 'unmatched', 'maxRequeues', 'compensate', 'compensatedTag', 'overwrite', 'parse', 'maxBodySize', 'authorize', 'onAnswer']),
          async (factory, target, options) => {
            await answersOrFailsCoded(() => (factory as (t: unknown, o: unknown) => unknown)(target, options));
            await answersOrFailsCoded(() => (factory as (t: unknown, o: unknown) => unknown)(controller, options));
          },
        ),
        { numRuns: RUNS },
      );
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(fromHeader, fromPath), anything, async (extractor, argument) =>
          answersOrFailsCoded(() => (extractor as (a: unknown) => unknown)(argument)),
        ),
        { numRuns: RUNS },
      );
    } finally {
      await controller.close();
    }
  });

  // Without `url`: a fuzzed URL would make the store connect somewhere.
  it('new RedisTagStore(options) and new RedisBackplane(options)', async () => {
    const keys = ['redis', 'redisOptions', 'prefix', 'maxTtl', 'connectTimeout', 'clock', 'subscriber', 'instanceId', 'forwardTimeout', 'retryInterval', 'leaseTtl', 'deadlineGrace', 'commandTimeout', 'codec', 'tagStore', 'rollbackTag'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(RedisTagStore, RedisBackplane), optionsOf(keys), async (Component, options) => {
        let made: { close(): Promise<void> } | undefined;
        await answersOrFailsCoded(() => (made = new (Component as new (o: unknown) => { close(): Promise<void> })(options)));
        await made?.close();
      }),
      { numRuns: RUNS },
    );
  });
});
