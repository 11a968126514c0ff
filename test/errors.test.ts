import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as rrxc from '../src/index.js';

/** Each error class with arguments that make a valid instance. */
const CATALOGUE: [new (...args: any[]) => rrxc.RrxcError, unknown[]][] = [
  [rrxc.InvalidArgumentError, ['bad']],
  [rrxc.CorrelationIdConflictError, ['id-1']],
  [rrxc.ExchangeSealedError, ['xc-1']],
  [rrxc.ExchangeEndedError, ['ended', 'closed', new Error('why')]],
  [rrxc.ControllerClosedError, []],
  [rrxc.CapacityError, [10]],
  [rrxc.TagStoreError, ['getTags', new Error('down')]],
  [rrxc.BackplaneError, ['owner-unreachable', 'no answer']],
];

const docs = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

describe('the error catalogue', () => {
  it.each(CATALOGUE)('%o is an RrxcError with its name, its code and a row in docs/errors.md', (ErrorClass, args) => {
    const error = new ErrorClass(...args);
    expect(error).toBeInstanceOf(rrxc.RrxcError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe(ErrorClass.name);
    expect(error.code).toMatch(/^ERR_RRXC_[A-Z_]+$/);
    expect(docs).toContain(`| \`${ErrorClass.name}\` | \`${error.code}\` |`);
  });

  it('lists every exported error class', () => {
    const exported = Object.entries(rrxc)
      .filter(([, value]) => typeof value === 'function' && value.prototype instanceof rrxc.RrxcError)
      .map(([name]) => name)
      .sort();
    expect(exported).toEqual(CATALOGUE.map(([c]) => c.name).sort());
  });

  it('keeps the abort reason as cause of ExchangeEndedError, and no cause when there was none', () => {
    const reason = new Error('client went away');
    expect(new rrxc.ExchangeEndedError('x', 'aborted', reason).cause).toBe(reason);
    expect('cause' in new rrxc.ExchangeEndedError('x', 'timed-out')).toBe(false);
    expect(new rrxc.ExchangeEndedError('x', 'closed', undefined)).toHaveProperty('cause', undefined);
  });

  it('wraps the failure of a tag store as cause of TagStoreError', () => {
    const down = new Error('ECONNREFUSED');
    const error = new rrxc.TagStoreError('tag', down);
    expect(error.cause).toBe(down);
    expect(error.message).toBe('tag store tag() failed: ECONNREFUSED');
  });
});
