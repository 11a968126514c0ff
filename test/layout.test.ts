// The layering of src/, written down as rules and checked against every
// file's imports: the folders say which way imports may run, and this test
// keeps them saying the truth. It reads the sources as text, as
// test/errors.test.ts reads docs/errors.md.
import { readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Source text by path under src/, with `/` separators: `redis/backplane.ts`. */
type Sources = ReadonlyMap<string, string>;

/** One import or re-export of a module of the package. */
interface Edge {
  readonly from: string;
  /** The imported file, as a path under src/ (it may not exist: see the resolution check). */
  readonly to: string;
  /** `import type …`, `export type …`, or braces holding only `type` names. */
  readonly typeOnly: boolean;
}

interface Rule {
  readonly name: string;
  /** What breaks the rule, one line per offending import (empty: it holds). */
  violations(sources: Sources, edges: readonly Edge[]): string[];
}

const SRC = new URL('../src/', import.meta.url);

function readSources(): Sources {
  const paths = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .map((path) => path.split('\\').join('/'))
    .filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))
    .sort();
  return new Map(paths.map((path) => [path, readFileSync(new URL(path, SRC), 'utf8')]));
}

/** The folder of a path under src/: `''` for the top level. */
const folder = (path: string): string => posix.dirname(path).replace(/^\.$/, '');

/** Strings stay (specifiers live in them); comments go, so that commented-out code and TSDoc examples are not imports. */
const TOKENS = /('(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`)|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g;
const withoutComments = (text: string): string => text.replace(TOKENS, (_, string: string | undefined) => string ?? ' ');

/**
 * `import … from`, `import type … from`, `export {…} from`, `export * from`,
 * side-effect `import '…'` and dynamic `import('…')`. A clause holds names,
 * braces, commas, `*`, `as` and `type` only, so a match never runs into the
 * next statement.
 */
const IMPORT =
  /\b(?:import|export)\s+(type\s+)?([\w$\s{},*]*?)\s*from\s*(['"])([^'"]+)\3|\bimport\s*(['"])([^'"]+)\5|\bimport\s*\(\s*(['"])([^'"]+)\7\s*\)/g;

/**
 * The package's own entry points, should a file import one by name, from
 * the `types` of package.json's exports: `rrxc/redis` → `redis/index.ts`.
 */
const SELF: Record<string, string> = Object.fromEntries(
  Object.entries((JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { exports: Record<string, { types?: string } | string> }).exports).flatMap(
    ([subpath, target]) => {
      const source = (typeof target === 'string' ? undefined : target.types)?.match(/^\.\/dist\/(.+)\.d\.ts$/)?.[1];
      return source === undefined ? [] : [[`rrxc${subpath.slice(1)}`, `${source}.ts`]];
    },
  ),
);

/** The folders that are subpaths of the package: `redis`, `integrations`, … */
const SUBPATHS: ReadonlySet<string> = new Set(Object.values(SELF).map(folder).filter((f) => f !== ''));

function edgesOf(path: string, text: string): Edge[] {
  const code = withoutComments(text);
  const edges: Edge[] = [];
  for (const match of code.matchAll(IMPORT)) {
    const specifier = match[4] ?? match[6] ?? match[8]!;
    const to = specifier.startsWith('.') ? posix.join(folder(path), specifier).replace(/\.js$/, '.ts') : SELF[specifier];
    if (to === undefined) continue; // node: built-ins and dependencies
    const clause = match[2] ?? '';
    const braced = /^\{([^}]*)\}$/.exec(clause.trim());
    const names = braced?.[1]!.split(',').map((name) => name.trim()).filter(Boolean);
    const typeOnly = match[1] !== undefined || (names !== undefined && names.length > 0 && names.every((name) => name.startsWith('type ')));
    edges.push({ from: path, to, typeOnly });
  }
  return edges;
}

const allEdges = (sources: Sources): Edge[] => [...sources].flatMap(([path, text]) => edgesOf(path, text));
const show = ({ from, to, typeOnly }: Edge): string => `${from} → ${to}${typeOnly ? ' (type)' : ''}`;

/** The core objects, which nothing below them may know. */
const CORE = new Set(['controller.ts', 'exchange.ts', 'rollback.ts']);

/** Every chain of imports from `start` that reaches a core object, as `a → b → controller.ts`. */
function pathsToCore(start: string, edges: readonly Edge[]): string[] {
  const found: string[] = [];
  const seen = new Set([start]);
  const queue: string[][] = [[start]];
  for (let chain = queue.shift(); chain !== undefined; chain = queue.shift()) {
    for (const edge of edges) {
      if (edge.from !== chain.at(-1) || seen.has(edge.to)) continue;
      // The one loop kept on purpose: a message type names its emitter.
      if (edge.from === 'events.ts' && edge.typeOnly && (edge.to === 'controller.ts' || edge.to === 'exchange.ts')) continue;
      seen.add(edge.to);
      if (CORE.has(edge.to)) found.push([...chain, edge.to].join(' → '));
      else queue.push([...chain, edge.to]);
    }
  }
  return found;
}

/** Modules any folder may use although their names start with `_`. */
const SHARED_INTERNALS = new Set(['_validate.ts', '_describe.ts']);

/**
 * A subpath builds on the core, and on another subpath only through what
 * that one publishes — its `index.ts`, which a user could import as
 * `rrxc/<subpath>` too — never on its other files.
 */
function subpathRule(subpath: string): Rule {
  const allowed = new Set(['', 'timing', 'structures', subpath]);
  const publicEntry = (to: string): boolean => SUBPATHS.has(folder(to)) && posix.basename(to) === 'index.ts';
  return {
    name: `src/${subpath}/ imports only top-level files, src/timing/, src/structures/, its own folder and another subpath's index.ts`,
    violations: (_, edges) => edges.filter((e) => folder(e.from) === subpath && !allowed.has(folder(e.to)) && !publicEntry(e.to)).map(show),
  };
}

const RULES = {
  structures: {
    name: 'src/structures/ imports nothing of the package outside src/structures/',
    violations: (_, edges) => edges.filter((e) => folder(e.from) === 'structures' && folder(e.to) !== 'structures').map(show),
  },
  belowCore: {
    name: 'src/routing/, src/timing/ and src/results/ never reach controller.ts, exchange.ts or rollback.ts, not even for a type',
    violations: (sources, edges) =>
      [...sources.keys()].filter((path) => ['routing', 'timing', 'results'].includes(folder(path))).flatMap((path) => pathsToCore(path, edges)),
  },
  validators: {
    name: 'src/_validate.ts and src/_describe.ts import only errors.ts, clock.ts and _describe.ts',
    violations: (_, edges) =>
      edges.filter((e) => SHARED_INTERNALS.has(e.from) && !['errors.ts', 'clock.ts', '_describe.ts'].includes(e.to)).map(show),
  },
  redis: subpathRule('redis'),
  integrations: subpathRule('integrations'),
  nats: subpathRule('nats'),
  otel: subpathRule('otel'),
  postgres: subpathRule('postgres'),
  index: {
    name: 'src/index.ts holds only named re-exports',
    violations: (sources) => {
      const code = withoutComments(sources.get('index.ts') ?? '');
      const rest = code.replace(/\bexport\s+(?:type\s+)?\{[^}]*\}\s*from\s*(['"])[^'"]+\1\s*;?/g, '').trim();
      return rest === '' ? [] : [`index.ts: ${rest.slice(0, 120)}`];
    },
  },
  internals: {
    name: "no file imports a _-prefixed module of another folder, but for the top-level _validate.ts and _describe.ts",
    violations: (_, edges) =>
      edges
        .filter((e) => posix.basename(e.to).startsWith('_') && folder(e.to) !== folder(e.from) && !SHARED_INTERNALS.has(e.to))
        .map(show),
  },
} satisfies Record<string, Rule>;

const sources = readSources();
const edges = allEdges(sources);

describe('the layering of src/', () => {
  it('finds the imports it checks: every one names a file under src/', () => {
    expect(sources.size).toBeGreaterThan(30);
    expect(edges.length).toBeGreaterThan(100);
    expect(edges.filter((e) => !sources.has(e.to)).map(show)).toEqual([]);
  });

  it('has a rule for every subpath of package.json', () => {
    expect(SELF).toMatchObject({ rrxc: 'index.ts', 'rrxc/redis': 'redis/index.ts', 'rrxc/integrations': 'integrations/index.ts', 'rrxc/nats': 'nats/index.ts', 'rrxc/otel': 'otel/index.ts' });
    expect([...SUBPATHS].filter((subpath) => !(subpath in RULES))).toEqual([]);
  });

  for (const rule of Object.values(RULES)) {
    it(rule.name, () => {
      expect(rule.violations(sources, edges)).toEqual([]);
    });
  }
});

/**
 * A deliberate violation of each rule, planted in memory (src/ is not
 * touched): a rule that could no longer fail — a regex that stopped
 * matching, a folder renamed — fails here.
 */
const PLANTED: [rule: keyof typeof RULES, violation: string, plants: Record<string, string>][] = [
  ['structures', 'a type import of the clock', { 'structures/fifo.ts': "import type { Clock } from '../clock.js';" }],
  ['structures', 'the package imported by its name', { 'structures/slot-table.ts': "import { Controller } from 'rrxc';" }],
  ['belowCore', 'a type import of the Controller', { 'timing/timer-lane.ts': "import type { Controller } from '../controller.js';" }],
  ['belowCore', 'an inline type import of the Exchange', { 'results/snapshots.ts': "import { type Exchange } from '../exchange.js';" }],
  ['belowCore', 'a re-export of a module that imports the Controller', { 'routing/secure-id.ts': "export { replyTarget } from '../integrations/reply-target.js';" }],
  [
    'belowCore',
    'a value import of the Controller in events.ts, which routing/ imports',
    { 'routing/secure-id.ts': "import { CHANNELS } from '../events.js';", 'events.ts': "import { Controller } from './controller.js';" },
  ],
  ['validators', 'an import over several lines', { '_describe.ts': "import {\n  DEFAULT_ROLLBACK_TAG,\n} from './options.js';" }],
  ['validators', 'a side-effect import', { '_validate.ts': "import './routing/secure-id.js';" }],
  ['redis', 'an import of routing/', { 'redis/backplane.ts': "import { secureId } from '../routing/secure-id.js';" }],
  ['integrations', "a dynamic import of another subpath's non-index file", { 'integrations/_shared.ts': "const { RedisBackplane } = await import('../redis/backplane.js');" }],
  ['integrations', 'a type re-export of results/', { 'integrations/http-callback.ts': "export type * from '../results/snapshots.js';" }],
  ['nats', "an import of another subpath's non-index file", { 'nats/reply-consumer.ts': "import { createReplyHandler } from '../integrations/queue-consumer.js';" }],
  ['nats', 'an import of routing/', { 'nats/reply-fields.ts': "import { secureId } from '../routing/secure-id.js';" }],
  ['otel', "a type re-export of another subpath's non-index file", { 'otel/spans.ts': "export type { ReplyTarget } from '../integrations/reply-target.js';" }],
  ['index', 'a star re-export', { 'index.ts': "export * from './types.js';" }],
  ['index', 'a declaration', { 'index.ts': "export const VERSION = '0.1.0';" }],
  ['internals', "an import of another subpath's _ module", { 'integrations/queue-consumer.ts': "import { DEFAULT_PREFIX } from '../redis/_keys.js';" }],
  ['internals', "the core importing a subpath's _ module", { 'controller.ts': "import type { Shared } from './integrations/_shared.js';" }],
];

/** The sources with `plants` put at the top of their files. */
function plant(plants: Record<string, string>): Sources {
  const planted = new Map(sources);
  for (const [file, code] of Object.entries(plants)) planted.set(file, `${code}\n${sources.get(file) ?? ''}`);
  return planted;
}

describe('the layering rules themselves', () => {
  it.each(PLANTED)('%s fails on %s', (key, _, plants) => {
    const planted = plant(plants);
    expect(RULES[key].violations(planted, allEdges(planted))).not.toEqual([]);
  });

  it("lets a subpath import another subpath's index.ts, by path or by the package's name", () => {
    const planted = plant({
      'otel/metrics.ts': "import type { RedisBackplane } from '../redis/index.js';\nimport { consumeNatsReplies } from 'rrxc/nats';",
    });
    expect(RULES.otel.violations(planted, allEdges(planted))).toEqual([]);
  });

  it('lets routing/ import events.ts, whose imports of the Controller and Exchange are type-only', () => {
    const planted = plant({ 'routing/secure-id.ts': "import { CHANNELS } from '../events.js';" });
    expect(RULES.belowCore.violations(planted, allEdges(planted))).toEqual([]);
  });
});
