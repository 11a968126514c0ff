import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as core from '../src/index.js';
import { Controller, type RequestHandle } from '../src/index.js';
import * as integrations from '../src/integrations/index.js';
import * as nats from '../src/nats/index.js';
import * as otel from '../src/otel/index.js';
import * as postgres from '../src/postgres/index.js';
import * as redis from '../src/redis/index.js';

// What users see is the declarations the build ships (`stripInternal`), so
// the surface is read from those, emitted here in memory from the sources.
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENTRY_POINTS = ['src/index.ts', 'src/redis/index.ts', 'src/integrations/index.ts', 'src/nats/index.ts', 'src/otel/index.ts', 'src/postgres/index.ts'];

function emitDeclarations(): Map<string, string> {
  const config = ts.getParsedCommandLineOfConfigFile(`${ROOT}tsconfig.build.json`, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
    },
  })!;
  const files = new Map<string, string>();
  const options = { ...config.options, emitDeclarationOnly: true, declarationMap: false, sourceMap: false, noEmit: false };
  ts.createProgram(ENTRY_POINTS.map((entry) => ROOT + entry), options).emit(undefined, (name, text) => files.set(name, text));
  return files;
}

/** The members of every exported class in the declarations, but its private ones: `Class → [member, …]`. */
function publicMembers(declarations: Map<string, string>): Map<string, string[]> {
  const classes = new Map<string, string[]>();
  for (const [name, text] of declarations) {
    const source = ts.createSourceFile(name, text, ts.ScriptTarget.Latest);
    for (const node of source.statements) {
      if (!ts.isClassDeclaration(node) || node.name === undefined) continue;
      const members = node.members
        .filter((m) => !(ts.getCombinedModifierFlags(m) & ts.ModifierFlags.Private) && !(m.name !== undefined && ts.isPrivateIdentifier(m.name)))
        .map((m) => (m.name === undefined ? 'constructor' : m.name.getText(source)));
      classes.set(node.name.text, members);
    }
  }
  return classes;
}

const declarations = emitDeclarations();
const surface = publicMembers(declarations);

/** The public members each exported class may have; a new one is a decision, made here. */
const PINNED: Record<string, string[]> = {
  Controller: [
    'constructor', 'openExchanges', 'pendingRequests', 'createExchange', 'newCorrelationId', 'registerResponse', 'synchronize', 'request',
    'tag', 'untag', 'hasTag', 'isRolledBack', 'claim', 'getExchange', 'hasRequest', 'requestAge', 'currentExchange', 'close', '[Symbol.asyncDispose]',
  ],
  // No constructor: exchanges come from the controller.
  Exchange: [
    'id', 'state', 'deadline', 'status', 'signal', 'newCorrelationId', 'registerRequest', 'wait', 'responses', 'run', 'close',
    '[Symbol.dispose]', '[Symbol.asyncDispose]', 'getRequest', 'getResponse', 'hasRequest', 'requestAge',
  ],
  MemoryTagStore: ['constructor', 'tag', 'claim', 'untag', 'getTags', 'close'],
  // The Backplane contract's methods are public: the controller takes any Backplane, this one included.
  RedisBackplane: ['instanceId', 'connect', 'constructor', 'ready', 'tagStore', 'start', 'idPrefix', 'requestRegistered', 'requestsEnded', 'forward', 'close', 'checkLease'],
  RedisTagStore: ['connect', 'constructor', 'ready', 'tag', 'untag', 'getTags', 'claim', 'close'],
  PostgresTagStore: ['constructor', 'setup', 'setupSql', 'within', 'tag', 'untag', 'getTags', 'claim', 'purgeExpired', 'close'],
};

describe('the published types', () => {
  for (const [name, members] of Object.entries(PINNED)) {
    it(`give ${name} exactly its documented members`, () => {
      expect(surface.get(name)?.sort()).toEqual([...members].sort());
    });
  }

  it('pin every class the entry points export, but the errors', () => {
    const classes = [core, redis, integrations, nats, otel, postgres].flatMap((m) => Object.entries(m)).filter(([name, value]) => typeof value === 'function' && /^[A-Z]/.test(name));
    expect(classes.map(([name]) => name).filter((name) => !(name in PINNED) && !name.endsWith('Error'))).toEqual([]);
  });

  it('type a request handle as its ID and its response, nothing else', () => {
    expectTypeOf<RequestHandle<number>>().toEqualTypeOf<{ readonly correlationId: string; readonly response: Promise<number> }>();
    const xc = new Controller<string, number>().createExchange();
    expectTypeOf(xc.registerRequest()).toEqualTypeOf<RequestHandle<number>>();
    xc.close();
  });
});

describe('a request handle', () => {
  it('has the correlation ID as its only own property, and reaches nothing else', async () => {
    const controller = new Controller<string, string>();
    const xc = controller.createExchange();
    const handle = xc.registerRequest({ message: 'job' });
    expect(Reflect.ownKeys(handle)).toEqual(['correlationId']);
    expect(Reflect.ownKeys(Object.getPrototypeOf(handle)).sort()).toEqual(['constructor', 'response']);
    // Whatever user code tries on it, the real reply still completes the exchange.
    for (const key of ['answer', 'abandon', 'next', 'owner', 'snapshot']) expect((handle as unknown as Record<string, unknown>)[key]).toBeUndefined();
    expect(await controller.registerResponse({ correlationId: handle.correlationId, message: 'real' })).toBe('delivered');
    expect(await handle.response).toBe('real');
    expect((await xc.wait()).status).toBe('completed');
    await controller.close();
  });
});
