import { describe, expect, it } from 'vitest';
import { DeadlineQueue } from '../../src/timing/deadline-queue.js';
import type { DeadlineTarget } from '../../src/timing/timer-lane.js';
import { ManualClock } from '../helpers/manual-clock.js';

const target = (clock: ManualClock, timeout: number, fired: number[] = []): DeadlineTarget => ({
  deadline: clock.now() + timeout,
  onDeadline: () => fired.push(timeout),
});

describe('DeadlineQueue', () => {
  it('fires each target at its own timeout, one timer per timeout value', () => {
    const clock = new ManualClock();
    const queue = new DeadlineQueue<DeadlineTarget>(clock);
    const fired: number[] = [];
    for (const timeout of [200, 100, 200, 100]) queue.add(target(clock, timeout, fired), timeout);
    expect(clock.pending).toBe(2);
    clock.advance(100);
    expect(fired).toEqual([100, 100]);
    clock.advance(100);
    expect(fired).toEqual([100, 100, 200, 200]);
  });

  it('keeps the lane of a timeout whose exchanges come one at a time, without a timer per exchange', () => {
    const clock = new ManualClock(undefined, { refable: true });
    const queue = new DeadlineQueue<DeadlineTarget>(clock);
    for (let i = 0; i < 5; i++) queue.delete(100, queue.add(target(clock, 100), 100));
    expect([clock.armed, clock.pending, clock.held]).toEqual([1, 1, 0]);
  });

  it('keeps no more than a few empty lanes: timeouts computed per request hold no timer once their targets leave', () => {
    const clock = new ManualClock(undefined, { refable: true });
    const queue = new DeadlineQueue<DeadlineTarget>(clock);
    // Lanes busy at once, as with a remaining budget per request: the ones that empty past the few kept go.
    const tickets = Array.from({ length: 100 }, (_, i) => [1_000 + i, queue.add(target(clock, 1_000 + i), 1_000 + i)] as const);
    for (const [timeout, ticket] of tickets) queue.delete(timeout, ticket);
    expect(clock.pending).toBeLessThanOrEqual(8);
    expect(clock.held).toBe(0);
  });

  it('clear() stops every timer and fires nothing', () => {
    const clock = new ManualClock(undefined, { refable: true });
    const queue = new DeadlineQueue<DeadlineTarget>(clock);
    const fired: number[] = [];
    queue.add(target(clock, 100, fired), 100);
    queue.delete(50, queue.add(target(clock, 50, fired), 50));
    queue.clear();
    clock.advance(1_000);
    expect([clock.pending, fired]).toEqual([0, []]);
  });
});
