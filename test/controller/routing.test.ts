import { describe, expect, it } from 'vitest';
import type { ResponseOutcome } from '../../src/index.js';
import { ONE_MINUTE, THREE_HOURS, clock, closeControllersAfterEach, make } from '../helpers/controllers.js';

closeControllersAfterEach();

describe('registerResponse()', () => {
  it('delivers a reply to the exchange that registered its ID', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const handle = xc.registerRequest();
    expect(await controller.registerResponse({ correlationId: handle.correlationId, message: 'hi' })).toBe('delivered');
    await expect(handle.response).resolves.toBe('hi');
    expect(xc.getResponse(handle.correlationId)).toBe('hi');
  });

  it('reports a second reply to an open exchange as duplicate and keeps the first', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'first' });
    expect(await controller.registerResponse({ correlationId, message: 'second' })).toBe('duplicate');
    expect(xc.getResponse(correlationId)).toBe('first');
  });

  it('rejects a non-boolean overwrite instead of treating it as false', async () => {
    const controller = make();
    await expect(controller.registerResponse({ correlationId: 'x', message: 'y', overwrite: 'yes' as never })).rejects.toThrow(
      /overwrite must be a boolean/,
    );
  });

  it('replaces the reply with overwrite: true and reports overwritten', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'first' });
    expect(await controller.registerResponse({ correlationId, message: 'second', overwrite: true })).toBe('overwritten');
    expect(xc.getResponse(correlationId)).toBe('second');
  });

  it('reports a reply to an answered ID of an ended exchange as duplicate within duplicateWindow, then unmatched', async () => {
    const controller = make({ duplicateWindow: 1_000 });
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'once' });
    await xc.wait();
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('duplicate');
    expect(await controller.registerResponse({ correlationId, message: 'again', overwrite: true })).toBe('duplicate');
    clock.advance(1_001);
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('unmatched');
  });

  it('keeps answered IDs for 60 s by default: duplicate at 60 000 ms, unmatched after', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'once' });
    await xc.wait();
    clock.advance(ONE_MINUTE);
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('duplicate');
    clock.advance(1);
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('unmatched');
  });

  it('keeps rollback tags for 3 h by default: rolled-back at 3 h - 1 ms, unmatched at 3 h', async () => {
    const controller = make();
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    xc.close();
    clock.advance(THREE_HOURS - 1);
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
    clock.advance(1);
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('unmatched');
  });

  it('forgets answered IDs at once with duplicateWindow 0', async () => {
    const controller = make({ duplicateWindow: 0 });
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    await controller.registerResponse({ correlationId, message: 'once' });
    await xc.wait();
    expect(await controller.registerResponse({ correlationId, message: 'again' })).toBe('unmatched');
  });

  it('reports a late reply as rolled-back until the rollback tag expires, then unmatched', async () => {
    const controller = make({ rollbackTtl: 5_000 });
    const xc = controller.createExchange({ timeout: 100 });
    const { correlationId } = xc.registerRequest();
    clock.advance(100); // the tag is written now, when the timeout fires
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
    clock.advance(4_999);
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
    clock.advance(1);
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('unmatched');
  });

  it('keeps rollback tags forever with rollbackTtl 0', async () => {
    const controller = make({ rollbackTtl: 0 });
    const xc = controller.createExchange();
    const { correlationId } = xc.registerRequest();
    xc.close();
    clock.advance(365 * 24 * 3_600_000);
    expect(await controller.registerResponse({ correlationId, message: 'very late' })).toBe('rolled-back');
  });

  it('reports a reply nobody asked for as unmatched', async () => {
    expect(await make().registerResponse({ correlationId: 'stranger', message: 'x' })).toBe('unmatched');
  });

  it.each([
    ['no options', undefined],
    ['a numeric ID', { correlationId: 1, message: 'x' }],
    ['an empty ID', { correlationId: '', message: 'x' }],
    ['an over-long ID', { correlationId: 'y'.repeat(257), message: 'x' }],
  ])('rejects %s with InvalidArgumentError, never throwing synchronously', async (_, options) => {
    const controller = make();
    let promise: Promise<ResponseOutcome> | undefined;
    expect(() => (promise = controller.registerResponse(options as never))).not.toThrow();
    await expect(promise).rejects.toMatchObject({ name: 'InvalidArgumentError', code: 'ERR_RRXC_INVALID_ARGUMENT' });
  });

  it('does not let a flood of answered IDs evict a rollback tag', async () => {
    const controller = make({ maxTags: 10, maxDuplicates: 10 });
    const late = controller.createExchange();
    const { correlationId } = late.registerRequest();
    late.close();
    for (let i = 0; i < 100; i++) {
      const xc = controller.createExchange();
      const handle = xc.registerRequest();
      await controller.registerResponse({ correlationId: handle.correlationId, message: 'ok' });
      await xc.wait();
    }
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
  });

  it('reports rolled-back, not duplicate, for an ID answered once and then reused and left unanswered', async () => {
    const controller = make();
    const first = controller.createExchange();
    first.registerRequest({ correlationId: 'reused' });
    await controller.registerResponse({ correlationId: 'reused', message: 'ok' });
    await first.wait();
    const second = controller.createExchange();
    second.registerRequest({ correlationId: 'reused' });
    second.close();
    expect(await controller.registerResponse({ correlationId: 'reused', message: 'late' })).toBe('rolled-back');
  });

  it('reports rolled-back, not duplicate, for a generated ID answered once and then given again and left unanswered', async () => {
    const controller = make();
    const first = controller.createExchange();
    const { correlationId } = first.registerRequest();
    await controller.registerResponse({ correlationId, message: 'ok' });
    await first.wait();
    const second = controller.createExchange();
    second.registerRequest({ correlationId });
    second.close();
    expect(await controller.registerResponse({ correlationId, message: 'late' })).toBe('rolled-back');
  });
});
