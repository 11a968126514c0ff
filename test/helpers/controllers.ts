import { afterEach, expect } from 'vitest';
import { Controller, type ControllerOptions } from '../../src/index.js';
import { ManualClock } from './manual-clock.js';

/** The contract's defaults (API.md), written out rather than read from the source. */
export const THREE_HOURS = 3 * 60 * 60 * 1_000;
export const ONE_MINUTE = 60_000;

/** The controllers a test made (by `make()` or by pushing its own): closed after it. */
export const controllers: Controller<any, any>[] = [];

/**
 * The clock of the controller `make()` made last. A live binding: importers
 * see each new clock, and after each test it must hold no timer.
 */
export let clock = new ManualClock();

/** Starts a fresh clock, for a test that makes its controller itself. */
export function resetClock(): ManualClock {
  clock = new ManualClock();
  return clock;
}

/** A controller on a fresh manual clock, closed after the test. */
export function make<Req = string, Res = string>(options: ControllerOptions<Req, Res> = {}): Controller<Req, Res> {
  resetClock();
  const controller = new Controller<Req, Res>({ clock, ...options });
  controllers.push(controller);
  return controller;
}

/**
 * Call once at the top of a test file: after each test, closes the
 * controllers it made and checks that none left a timer behind.
 */
export function closeControllersAfterEach(): void {
  afterEach(async () => {
    await Promise.all(controllers.splice(0).map((c) => c.close()));
    expect(clock.pending).toBe(0);
  });
}
