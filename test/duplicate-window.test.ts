import { describe, expect, it } from 'vitest';
import { DuplicateWindow } from '../src/duplicate-window.js';
import { ManualClock } from './support/manual-clock.js';

describe('DuplicateWindow', () => {
  it('remembers an ID for the window, inclusive, then forgets it', () => {
    const clock = new ManualClock();
    const window = new DuplicateWindow(100, 10, clock);
    window.add('a');
    clock.advance(100);
    expect(window.has('a')).toBe(true);
    clock.advance(1);
    expect(window.has('a')).toBe(false);
  });

  it('evicts the oldest IDs first past its bound', () => {
    const clock = new ManualClock();
    const window = new DuplicateWindow(60_000, 3, clock);
    for (const id of ['a', 'b', 'c', 'd']) window.add(id);
    expect(['a', 'b', 'c', 'd'].map((id) => window.has(id))).toEqual([false, true, true, true]);
  });

  it('treats an ID answered again as the newest, also when it was the oldest', () => {
    const clock = new ManualClock();
    const window = new DuplicateWindow(60_000, 3, clock);
    window.add('a');
    window.add('b');
    window.add('c');
    window.add('d'); // evicts a; the oldest is now b
    window.add('b'); // b is the newest again
    window.add('e'); // evicts c, not b
    expect(['b', 'c', 'd', 'e'].map((id) => window.has(id))).toEqual([true, false, true, true]);
  });

  it('keeps working after it emptied out', () => {
    const clock = new ManualClock();
    const window = new DuplicateWindow(10, 5, clock);
    window.add('a');
    clock.advance(11);
    window.add('b'); // expires a, exhausting the order
    clock.advance(11);
    window.add('c');
    window.add('d');
    expect(['a', 'b', 'c', 'd'].map((id) => window.has(id))).toEqual([false, false, true, true]);
  });

  it('remembers nothing with a window of 0', () => {
    const window = new DuplicateWindow(0, 5, new ManualClock());
    window.add('a');
    expect(window.has('a')).toBe(false);
  });
});
