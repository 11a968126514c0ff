import { tracingChannel } from 'node:diagnostics_channel';
import type { Histogram } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { clock, closeControllersAfterEach, make } from '../helpers/controllers.js';
import { instrumented, points, withGlobalContext } from './setup.js';

closeControllersAfterEach();
withGlobalContext();

const tracing = tracingChannel('rrxc:exchange');

describe('the instruments', () => {
  it('count each reply by outcome in rrxc.responses', async () => {
    const sdk = instrumented();
    const controller = make();
    const xc = controller.createExchange({ timeout: 10 });
    const late = xc.registerRequest();
    clock.advance(10);
    await xc.wait();
    const open = controller.createExchange();
    const first = open.registerRequest();
    const second = open.registerRequest();
    for (const [correlationId, overwrite] of [
      [first.correlationId, false],
      [second.correlationId, false],
      [first.correlationId, false],
      [first.correlationId, true],
      [late.correlationId, false],
      ['nobody', false],
    ] as const) {
      await controller.registerResponse({ correlationId, message: 'reply', overwrite });
    }
    const metric = (await sdk.collect()).get('rrxc.responses');
    expect(metric?.descriptor).toMatchObject({ unit: '{response}', type: 'COUNTER' });
    expect(points(metric)).toEqual([
      [{ 'rrxc.response.outcome': 'delivered' }, 2],
      [{ 'rrxc.response.outcome': 'duplicate' }, 1],
      [{ 'rrxc.response.outcome': 'overwritten' }, 1],
      [{ 'rrxc.response.outcome': 'rolled-back' }, 1],
      [{ 'rrxc.response.outcome': 'unmatched' }, 1],
    ]);
  });

  it('record how long exchanges lasted, in seconds, by status, in rrxc.exchange.duration', async () => {
    const sdk = instrumented();
    const controller = make();
    const completed = controller.createExchange();
    const { correlationId } = completed.registerRequest();
    const timedOut = controller.createExchange({ timeout: 50 });
    timedOut.registerRequest();
    clock.advance(1_500);
    await controller.registerResponse({ correlationId, message: 'done' });
    await completed.wait();
    const metric = (await sdk.collect()).get('rrxc.exchange.duration');
    expect(metric?.descriptor).toMatchObject({ unit: 's', type: 'HISTOGRAM' });
    const byStatus = points<Histogram>(metric).map(([attributes, h]) => [attributes, h.count, h.sum, h.min, h.max]);
    expect(byStatus).toEqual([
      [{ 'rrxc.exchange.status': 'completed' }, 1, 1.5, 1.5, 1.5],
      [{ 'rrxc.exchange.status': 'timed-out' }, 1, 0.05, 0.05, 0.05],
    ]);
    expect(points<Histogram>(metric)[0]![1].buckets.boundaries).toEqual([
      0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300,
    ]);
  });

  it('count exchanges up as they are made and down as they end, in rrxc.exchange.active', async () => {
    const sdk = instrumented();
    const controller = make();
    const exchanges = [controller.createExchange(), controller.createExchange(), controller.createExchange()];
    const active = async (): Promise<unknown> => points((await sdk.collect()).get('rrxc.exchange.active'));
    expect(await active()).toEqual([[{}, 3]]);
    exchanges[0]!.close();
    expect(await active()).toEqual([[{}, 2]]);
    await controller.synchronize({}, () => {});
    expect(await active()).toEqual([[{}, 2]]);
    await controller.close();
    expect(await active()).toEqual([[{}, 0]]);
    expect((await sdk.collect()).get('rrxc.exchange.active')?.descriptor).toMatchObject({ unit: '{exchange}', type: 'UP_DOWN_COUNTER' });
  });

  it('count the IDs tagged for rollback by the status their exchange ended with, in rrxc.rollback.tags', async () => {
    const sdk = instrumented();
    const controller = make();
    const timedOut = controller.createExchange({ timeout: 10 });
    const answered = timedOut.registerRequest();
    timedOut.registerRequest();
    timedOut.registerRequest();
    await controller.registerResponse({ correlationId: answered.correlationId, message: 'one' });
    const aborting = new AbortController();
    controller.createExchange({ signal: aborting.signal }).registerRequest();
    clock.advance(10);
    aborting.abort();
    const completed = controller.createExchange();
    await completed.wait();
    const metric = (await sdk.collect()).get('rrxc.rollback.tags');
    expect(metric?.descriptor).toMatchObject({ unit: '{tag}', type: 'COUNTER' });
    expect(points(metric)).toEqual([
      [{ 'rrxc.exchange.status': 'aborted' }, 1],
      [{ 'rrxc.exchange.status': 'timed-out' }, 2],
    ]);
  });

  it('leave out an exchange made before instrument(), traced by another subscriber: it is neither counted down nor timed', async () => {
    const controller = make();
    const other = (): void => {};
    tracing.start.subscribe(other);
    const before = controller.createExchange();
    tracing.start.unsubscribe(other);
    const sdk = instrumented();
    const after = controller.createExchange();
    before.close();
    after.close();
    await Promise.all([before.wait(), after.wait()]);
    const collected = await sdk.collect();
    expect(points(collected.get('rrxc.exchange.active'))).toEqual([[{}, 0]]);
    expect(points<Histogram>(collected.get('rrxc.exchange.duration')).map(([attributes, h]) => [attributes, h.count])).toEqual([
      [{ 'rrxc.exchange.status': 'closed' }, 1],
    ]);
  });
});
