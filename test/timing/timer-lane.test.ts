import { describe, expect, it } from 'vitest';
import { after, TimerLane, type DeadlineTarget } from '../../src/timing/timer-lane.js';
import { ManualClock } from '../helpers/manual-clock.js';

describe('TimerLane', () => {
  it('fires entries once their time has passed, in order, on one timer', () => {
    const clock = new ManualClock();
    const lane = new TimerLane<DeadlineTarget>(100, clock);
    const fired: string[] = [];
    after(lane, () => fired.push('a'));
    clock.advance(40);
    after(lane, () => fired.push('b'));
    expect(clock.pending).toBe(1);
    clock.advance(60);
    expect(fired).toEqual(['a']);
    clock.advance(40);
    expect(fired).toEqual(['a', 'b']);
    expect(clock.pending).toBe(0);
  });

  it('drops its timer when the last entry is cancelled', () => {
    const clock = new ManualClock();
    const lane = new TimerLane<DeadlineTarget>(100, clock);
    const first = after(lane, () => undefined);
    const second = after(lane, () => undefined);
    expect(lane.cancel(first)).toBe(true);
    expect(clock.pending).toBe(1);
    expect(lane.cancel(second)).toBe(true);
    expect(lane.cancel(second)).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('fires everything at once with fireAll(), and nothing after clear()', () => {
    const clock = new ManualClock();
    const lane = new TimerLane<DeadlineTarget>(100, clock);
    const fired: number[] = [];
    for (let i = 0; i < 3; i++) after(lane, () => fired.push(i));
    lane.fireAll();
    expect(fired).toEqual([0, 1, 2]);
    after(lane, () => fired.push(9));
    lane.clear();
    clock.advance(1_000);
    expect(fired).toEqual([0, 1, 2]);
    expect(clock.pending).toBe(0);
  });

  it('says when it holds nothing any more, after a sweep and after the last cancel, so that its owner can drop it', () => {
    const clock = new ManualClock();
    let idle = 0;
    const lane = new TimerLane<DeadlineTarget>(100, clock, () => idle++);
    after(lane, () => undefined);
    clock.advance(50);
    after(lane, () => undefined);
    clock.advance(50);
    expect([idle, lane.size]).toEqual([0, 1]);
    clock.advance(50);
    expect([idle, lane.size]).toEqual([1, 0]);
    const handle = after(lane, () => undefined);
    lane.cancel(handle);
    expect(idle).toBe(2);
    expect(clock.pending).toBe(0);
  });
});
