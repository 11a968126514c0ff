import { describe, expect, it } from 'vitest';
import { DuplicateWindow } from '../src/duplicate-window.js';
import { ManualClock } from './support/manual-clock.js';

describe('DuplicateWindow', () => {
  it('remembers an ID for the window, inclusive, then forgets it', () => {
    const clock = new ManualClock();
    const window = new DuplicateWindow(100, 10, clock);
    window.add('a', clock.now());
    clock.advance(100);
    expect(window.has('a')).toBe(true);
    clock.advance(1);
    expect(window.has('a')).toBe(false);
  });

  it('holds at most maxIds and at least the newest half of them, dropping the oldest first', () => {
    const clock = new ManualClock();
    const window = new DuplicateWindow(60_000, 10, clock);
    const ids = Array.from({ length: 100 }, (_, i) => `id-${i}`);
    for (const id of ids) {
      window.add(id, clock.now());
      const held = ids.filter((x) => window.has(x));
      expect(held.length).toBeLessThanOrEqual(10);
      // The newest ones are the ones held.
      expect(held).toEqual(ids.slice(ids.indexOf(id) + 1 - held.length, ids.indexOf(id) + 1));
    }
    expect(ids.filter((x) => window.has(x)).length).toBeGreaterThanOrEqual(5);
  });

  it('keeps an ID answered again for a full window from its last answer', () => {
    const clock = new ManualClock();
    const window = new DuplicateWindow(100, 1_000, clock);
    window.add('a', clock.now());
    clock.advance(90);
    window.add('b', clock.now());
    window.add('a', clock.now());
    clock.advance(90); // 180 after the first answer, 90 after the second
    expect(window.has('a')).toBe(true);
    expect(window.has('b')).toBe(true);
  });

  it('forgets an ID that was deleted, in either generation', () => {
    const clock = new ManualClock();
    const window = new DuplicateWindow(60_000, 4, clock);
    for (const id of ['a', 'b', 'c']) window.add(id, clock.now()); // a, b in the previous generation; c in the current
    window.delete('a');
    window.delete('c');
    expect(['a', 'b', 'c'].map((id) => window.has(id))).toEqual([false, true, false]);
  });

  it('remembers nothing with a window of 0', () => {
    const clock = new ManualClock();
    const window = new DuplicateWindow(0, 5, clock);
    window.add('a', clock.now());
    expect(window.has('a')).toBe(false);
  });
});
