import { describe, expect, it } from 'vitest';
import { TimerLane } from '../../src/redis/_lane.js';
import { ManualClock } from '../support/manual-clock.js';

describe('TimerLane', () => {
  it('fires entries once their time has passed, in order, on one timer', () => {
    const clock = new ManualClock();
    const lane = new TimerLane(100, clock);
    const fired: string[] = [];
    lane.add(() => fired.push('a'));
    clock.advance(40);
    lane.add(() => fired.push('b'));
    expect(clock.pending).toBe(1);
    clock.advance(60);
    expect(fired).toEqual(['a']);
    clock.advance(40);
    expect(fired).toEqual(['a', 'b']);
    expect(clock.pending).toBe(0);
  });

  it('drops its timer when the last entry is cancelled', () => {
    const clock = new ManualClock();
    const lane = new TimerLane(100, clock);
    const first = lane.add(() => undefined);
    const second = lane.add(() => undefined);
    expect(lane.cancel(first)).toBe(true);
    expect(clock.pending).toBe(1);
    expect(lane.cancel(second)).toBe(true);
    expect(lane.cancel(second)).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('fires everything at once with fireAll(), and nothing after clear()', () => {
    const clock = new ManualClock();
    const lane = new TimerLane(100, clock);
    const fired: number[] = [];
    for (let i = 0; i < 3; i++) lane.add(() => fired.push(i));
    lane.fireAll();
    expect(fired).toEqual([0, 1, 2]);
    lane.add(() => fired.push(9));
    lane.clear();
    clock.advance(1_000);
    expect(fired).toEqual([0, 1, 2]);
    expect(clock.pending).toBe(0);
  });
});
