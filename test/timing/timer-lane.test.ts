import { describe, expect, it } from 'vitest';
import { TimerLane, type DeadlineTarget } from '../../src/timing/timer-lane.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** A target due `lane.ms` from now that calls `fire`. */
const due = (lane: TimerLane<DeadlineTarget>, fire: () => void): DeadlineTarget => ({ deadline: lane.clock.now() + lane.ms, onDeadline: fire });

describe('TimerLane', () => {
  it('fires entries once their time has passed, in order, on one timer', () => {
    const clock = new ManualClock();
    const lane = new TimerLane<DeadlineTarget>(100, clock);
    const fired: string[] = [];
    lane.add(due(lane, () => fired.push('a')));
    clock.advance(40);
    lane.add(due(lane, () => fired.push('b')));
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
    const first = lane.add(due(lane, () => undefined));
    const second = lane.add(due(lane, () => undefined));
    expect(lane.cancel(first)).toBe(true);
    expect(clock.pending).toBe(1);
    expect(lane.cancel(second)).toBe(true);
    expect(lane.cancel(second)).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('hands back a target added under a key, once, and then no longer fires it', () => {
    const clock = new ManualClock();
    const lane = new TimerLane<DeadlineTarget>(100, clock);
    const fired: number[] = [];
    const seven = due(lane, () => fired.push(7));
    lane.add(seven, 7);
    lane.add(due(lane, () => fired.push(8)), 8);
    expect(lane.take(7)).toBe(seven);
    expect(lane.take(7)).toBeUndefined();
    clock.advance(100);
    expect(fired).toEqual([8]);
    expect(lane.take(8)).toBeUndefined();
    expect(clock.pending).toBe(0);
  });

  it('hands back every waiting target on clear(), oldest first, and fires none of them', () => {
    const clock = new ManualClock();
    const lane = new TimerLane<DeadlineTarget>(100, clock);
    const fired: number[] = [];
    const targets = [0, 1, 2].map((i) => due(lane, () => fired.push(i)));
    for (const target of targets) lane.add(target);
    expect(lane.clear()).toEqual(targets);
    clock.advance(1_000);
    expect(fired).toEqual([]);
    expect([lane.size, clock.pending]).toEqual([0, 0]);
  });

  it('says when it holds nothing any more, after a sweep and after the last cancel, so that its owner can drop it', () => {
    const clock = new ManualClock();
    let idle = 0;
    const lane = new TimerLane<DeadlineTarget>(100, clock, () => idle++);
    lane.add(due(lane, () => undefined));
    clock.advance(50);
    lane.add(due(lane, () => undefined));
    clock.advance(50);
    expect([idle, lane.size]).toEqual([0, 1]);
    clock.advance(50);
    expect([idle, lane.size]).toEqual([1, 0]);
    const handle = lane.add(due(lane, () => undefined));
    lane.cancel(handle);
    expect(idle).toBe(2);
    expect(clock.pending).toBe(0);
  });

  it('fires a target that an expiring one adds with a zero wait in the same sweep, without a second timer', () => {
    const clock = new ManualClock();
    const lane = new TimerLane<DeadlineTarget>(0, clock);
    const fired: string[] = [];
    lane.add(due(lane, () => {
      fired.push('first');
      lane.add(due(lane, () => fired.push('second')));
    }));
    clock.advance(0);
    expect(fired).toEqual(['first', 'second']);
    expect(clock.pending).toBe(0);
  });

  it("keeps its timer, unref'd, when the last target leaves, and holds the process open again with the next: one timer for targets that come one at a time", () => {
    const clock = new ManualClock(undefined, { refable: true });
    const lane = new TimerLane<DeadlineTarget>(100, clock);
    const fired: number[] = [];
    for (let i = 0; i < 3; i++) {
      lane.cancel(lane.add(due(lane, () => fired.push(i))));
      expect([clock.pending, clock.held]).toEqual([1, 0]);
      clock.advance(10);
    }
    lane.add(due(lane, () => fired.push(3)));
    expect([clock.armed, clock.held]).toEqual([1, 1]);
    // The kept timer fires at its first target's deadline and moves on to the waiting one's.
    clock.advance(70);
    expect(fired).toEqual([]);
    clock.advance(30);
    expect(fired).toEqual([3]);
  });

  it('drops the kept timer when it fires with nothing to sweep, and clear() drops it at once', () => {
    const clock = new ManualClock(undefined, { refable: true });
    let idle = 0;
    const lane = new TimerLane<DeadlineTarget>(100, clock, () => idle++);
    lane.cancel(lane.add(due(lane, () => undefined)));
    clock.advance(100);
    expect([clock.pending, idle]).toEqual([0, 2]);
    lane.cancel(lane.add(due(lane, () => undefined)));
    lane.clear();
    expect(clock.pending).toBe(0);
  });
});
