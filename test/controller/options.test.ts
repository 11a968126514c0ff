import { describe, expect, it } from 'vitest';
import { Controller, CorrelationIdConflictError, DEFAULT_TIMEOUT, InvalidArgumentError, type ControllerOptions } from '../../src/index.js';
import { clock, closeControllersAfterEach, make } from '../helpers/controllers.js';

closeControllersAfterEach();

describe('options', () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['an unknown option', { timout: 100 }, /unknown option `timout`/],
    ['a negative timeout', { timeout: -1 }, /timeout must be a number of milliseconds from 0 to 2147483647.*`-1`/],
    ['a NaN timeout', { timeout: Number.NaN }, /timeout .*`NaN`/],
    ['a timeout past what timers hold', { timeout: 2 ** 31 }, /timeout/],
    ['a string timeout', { timeout: '100' }, /timeout .*"100" \(string of 3\)/],
    ['a negative rollbackTtl', { rollbackTtl: -5 }, /rollbackTtl must be a finite number of milliseconds ≥ 0/],
    ['an infinite rollbackTtl', { rollbackTtl: Infinity }, /rollbackTtl/],
    ['a NaN duplicateWindow', { duplicateWindow: Number.NaN }, /duplicateWindow/],
    ['a fractional maxTags', { maxTags: 1.5 }, /maxTags must be an integer ≥ 1/],
    ['a zero maxPendingRequests', { maxPendingRequests: 0 }, /maxPendingRequests must be an integer ≥ 1/],
    ['an empty rollbackTag', { rollbackTag: '' }, /rollbackTag must be a non-empty string/],
    ['a newId that is not a function', { newId: 'abc' }, /newId must be a function/],
    ['a tagStore without methods', { tagStore: {} }, /tagStore must have the methods tag, untag, getTags, claim; missing: tag, untag, getTags, claim/],
    [
      'a backplane idPrefix that leaves no room for the generated ID',
      { maxIdLength: 40, backplane: { start() {}, forward() {}, close() {}, idPrefix: 'x'.repeat(20) } },
      /backplane.idPrefix must be a string of at most 19 characters .*\(string of 20\)/,
    ],
    ['a backplane idPrefix that is not a string', { backplane: { start() {}, forward() {}, close() {}, idPrefix: 7 } }, /backplane.idPrefix .*`7` \(number\)/],
  ])('rejects %s with InvalidArgumentError', (_, options, message) => {
    expect(() => new Controller(options as ControllerOptions)).toThrow(InvalidArgumentError);
    expect(() => new Controller(options as ControllerOptions)).toThrow(message);
  });

  it('rejects null option values rather than taking the defaults', () => {
    for (const key of ['timeout', 'rollbackTtl', 'maxTags', 'maxPendingRequests', 'duplicateWindow', 'rollbackTag']) {
      expect(() => new Controller({ [key]: null } as ControllerOptions)).toThrow(InvalidArgumentError);
    }
  });

  it('rejects options that are not an object with InvalidArgumentError', () => {
    expect(() => new Controller(42 as never)).toThrow(InvalidArgumentError);
    expect(() => new Controller(42 as never)).toThrow(expect.objectContaining({ code: 'ERR_RRXC_INVALID_ARGUMENT' }));
    expect(() => new Controller(42 as never)).toThrow(/Controller options must be an object, got `42` \(number\)/);
  });

  it('rejects bad per-exchange options', () => {
    const controller = make();
    expect(() => controller.createExchange({ timeout: -1 })).toThrow(InvalidArgumentError);
    expect(() => controller.createExchange({ signal: {} as AbortSignal })).toThrow(/signal must be an AbortSignal/);
    expect(() => controller.createExchange({ id: '' })).toThrow(/id must be a non-empty string/);
    expect(() => controller.createExchange({ wait: true } as never)).toThrow(/unknown option `wait`/);
    expect(controller.openExchanges).toBe(0);
  });

  it('times an exchange out after 30 s when neither the controller nor the exchange sets a timeout', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    expect(xc.deadline).toBe(clock.now() + DEFAULT_TIMEOUT);
    expect(DEFAULT_TIMEOUT).toBe(30_000);
    clock.advance(DEFAULT_TIMEOUT - 1);
    expect(xc.state).toBe('open');
    clock.advance(1);
    expect((await xc.wait()).status).toBe('timed-out');
    expect(await controller.isRolledBack(correlationId)).toBe(true);
  });

  it('treats an Infinity timeout as none', () => {
    const xc = make({ timeout: Infinity }).createExchange();
    expect(xc.deadline).toBeUndefined();
    expect(clock.pending).toBe(0);
  });

  it('uses a custom newId and retries it while it returns pending IDs', () => {
    const ids = ['one', 'one', 'two'];
    const controller = make({ newId: () => ids.shift() ?? 'three' });
    const xc = controller.createExchange({ id: 'x' });
    expect(xc.registerRequest().correlationId).toBe('one');
    expect(xc.registerRequest().correlationId).toBe('two');
  });

  it('hands out a different ID on each controller.newCorrelationId() call', () => {
    const controller = make();
    const ids = Array.from({ length: 100 }, () => controller.newCorrelationId());
    expect(new Set(ids).size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^[\w-]{21}$/);
  });

  it('retries a custom newId in controller.newCorrelationId() while it returns a pending ID', () => {
    const ids = ['taken', 'taken', 'fresh'];
    const controller = make({ newId: () => ids.shift() ?? 'spare' });
    controller.createExchange().registerRequest({ correlationId: 'taken' });
    expect(controller.newCorrelationId()).toBe('fresh');
    expect(ids).toEqual([]);
  });

  it('gives up with CorrelationIdConflictError on a newId that only returns pending IDs', () => {
    const controller = make({ newId: () => 'constant' });
    const xc = controller.createExchange({ id: 'x' });
    xc.registerRequest();
    expect(() => xc.registerRequest()).toThrow(CorrelationIdConflictError);
  });

  it('rejects an invalid ID returned by newId', () => {
    const controller = make({ newId: () => 7 as unknown as string });
    const xc = controller.createExchange();
    expect(() => xc.registerRequest()).toThrow(/the ID returned by newId\(\) must be a non-empty string/);
    expect(controller.pendingRequests).toBe(0);
  });

  it('generates exchange IDs unique within and across controllers, and keeps given ones', () => {
    const a = make();
    const b = make();
    const ids = [a, b].flatMap((c) => Array.from({ length: 1_000 }, () => c.createExchange().id));
    expect(new Set(ids).size).toBe(2_000);
    expect(a.createExchange({ id: 'order-42' }).id).toBe('order-42');
  });

  it('accepts longer IDs with maxIdLength', async () => {
    const controller = make({ maxIdLength: 1_000 });
    const id = 'x'.repeat(1_000);
    controller.createExchange().registerRequest({ correlationId: id });
    expect(await controller.registerResponse({ correlationId: id, message: 'ok' })).toBe('delivered');
  });
});
