// Every ```ts block of README.md and docs/*.md, and every ```ts block of a
// TSDoc `@example` in src/, compiles — under the project's own strict flags,
// against the sources, as a reader pasting it into a fresh module would get
// it. A block may opt out with `<!-- not compiled -->` on the line before it
// (Markdown only, for a deliberate fragment); each one is a decision, listed
// in OPTED_OUT below.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The marker, on the line before a fence, that keeps a Markdown block out. */
const OPT_OUT = '<!-- not compiled -->';

/** The blocks that carry the marker, as `page:line`: an opt-out is a decision, made here. */
const OPTED_OUT: readonly string[] = [];

/** Where `rrxc…` imports point: the source of each entry point of package.json, `rrxc/redis` → `src/redis/index.js`. */
const ENTRY_POINTS: Record<string, string> = Object.fromEntries(
  Object.entries((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types?: string } | string> }).exports).flatMap(
    ([subpath, target]) => {
      const types = typeof target === 'string' ? undefined : target.types;
      const source = types?.match(/^\.\/dist\/(.+)\.d\.ts$/)?.[1];
      return source === undefined ? [] : [[`rrxc${subpath.slice(1)}`, `src/${source}.js`]];
    },
  ),
);

/** One code block: where it is (file and line of its first code line), and its text. */
interface Snippet {
  readonly file: string;
  readonly line: number;
  readonly code: string;
}

/** The ```ts blocks of a Markdown page; `optedOut` gets those after the marker. */
function markdownSnippets(file: string, text: string, optedOut: string[] = []): Snippet[] {
  const lines = text.split('\n');
  const snippets: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(\S*)/.exec(lines[i]!);
    if (open === null) continue;
    const [, indent, fence, lang] = open;
    let end = i + 1;
    while (end < lines.length && !lines[end]!.trimStart().startsWith(fence!)) end++;
    if (lang === 'ts' || lang === 'typescript') {
      const previous = lines.slice(0, i).findLast((l) => l.trim() !== '')?.trim();
      if (previous === OPT_OUT) optedOut.push(`${file}:${i + 1}`);
      else snippets.push({ file, line: i + 2, code: lines.slice(i + 1, end).map((l) => l.slice(indent!.length)).join('\n') });
    }
    i = end;
  }
  return snippets;
}

/** The ```ts blocks of the `@example` tags of a TypeScript file's TSDoc comments. */
function exampleSnippets(file: string, text: string): Snippet[] {
  const snippets: Snippet[] = [];
  for (const comment of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const first = text.slice(0, comment.index).split('\n').length;
    const lines = comment[0].split('\n').map((l) => l.replace(/^\s*\/?\*+\/?\s?/, '').replace(/\s*\*\/$/, ''));
    let inExample = false;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (/^@\w+/.test(line)) inExample = line.startsWith('@example');
      if (!inExample || !/^```(ts|typescript)\s*$/.test(line)) continue;
      let end = i + 1;
      while (end < lines.length && !lines[end]!.startsWith('```')) end++;
      snippets.push({ file, line: first + i + 1, code: lines.slice(i + 1, end).join('\n') });
      i = end;
    }
  }
  return snippets;
}

/**
 * Compiles every snippet, each as a module of its own in a folder two
 * levels below the root (so the recipes' `../../src/…` imports resolve as
 * in examples/recipes/), and answers the diagnostics as
 * `file:line: message`, with the line in the page or source file.
 */
function compile(snippets: readonly Snippet[]): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
    },
  })!;
  // A snippet shows one thing; that it declares a name it does not use again is no fault.
  const options: ts.CompilerOptions = { ...config.options, noEmit: true, noUnusedLocals: false, noUnusedParameters: false, incremental: false };
  const dir = join(ROOT, 'test', '.snippets');
  const virtual = new Map<string, Snippet>();
  snippets.forEach((snippet, i) => {
    virtual.set(join(dir, `${i}-${snippet.file.replace(/[/.]/g, '_')}-${snippet.line}.ts`), snippet);
  });
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  const text = (snippet: Snippet): string =>
    // `export {}` makes a snippet without imports a module too, so top-level await works and names do not clash.
    `${snippet.code.replace(/(from\s+|import\s*\(\s*|import\s+)(['"])(rrxc(?:\/[\w-]+)?)\2/g, (match, head: string, quote: string, name: string) =>
      ENTRY_POINTS[name] === undefined ? match : `${head}${quote}${relative(dir, join(ROOT, ENTRY_POINTS[name])).split('\\').join('/')}${quote}`,
    )}\nexport {};\n`;
  host.fileExists = (name) => virtual.has(name) || fileExists.call(host, name);
  host.readFile = (name) => {
    const snippet = virtual.get(name);
    return snippet === undefined ? readFile.call(host, name) : text(snippet);
  };
  host.getSourceFile = (name, language, ...rest) => {
    const snippet = virtual.get(name);
    return snippet === undefined ? getSourceFile.call(host, name, language, ...rest) : ts.createSourceFile(name, text(snippet), language);
  };
  const program = ts.createProgram([...virtual.keys()], options, host);
  // The snippets' own diagnostics, and the program's; those of the sources are `npm run typecheck`'s to report.
  const diagnostics = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics(), ...[...virtual.keys()].flatMap((name) => {
    const file = program.getSourceFile(name)!;
    return [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)];
  })];
  return diagnostics.map((d) => {
    const snippet = d.file === undefined ? undefined : virtual.get(d.file.fileName);
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (snippet === undefined) return `${d.file ? relative(ROOT, d.file.fileName) : '(options)'}: ${message}`;
    const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
    return `${snippet.file}:${snippet.line + line}: ${message}`;
  });
}

const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const SOURCES = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
  .map((p) => `src/${p.split('\\').join('/')}`)
  .filter((p) => p.endsWith('.ts'))
  .sort();

describe('the code blocks of the docs', () => {
  const optedOut: string[] = [];
  const snippets = PAGES.flatMap((page) => markdownSnippets(page, read(page), optedOut));

  it('are found: README.md has its share', () => {
    expect(snippets.filter((s) => s.file === 'README.md').length).toBeGreaterThanOrEqual(4);
  });

  it('opt out only where the list below says so', () => {
    expect(optedOut).toEqual(OPTED_OUT);
  });

  it('compile under the project flags, each as a module of its own', () => {
    expect(compile(snippets)).toEqual([]);
  });
});

describe('the @example blocks of the TSDoc in src/', () => {
  const snippets = SOURCES.flatMap((path) => exampleSnippets(path, read(path)));

  it('are found', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(10);
  });

  it('compile under the project flags, each as a module of its own', () => {
    expect(compile(snippets)).toEqual([]);
  });
});

describe('the extraction', () => {
  it('maps every entry point of package.json to its source', () => {
    expect(ENTRY_POINTS).toMatchObject({ rrxc: 'src/index.js', 'rrxc/integrations': 'src/integrations/index.js', 'rrxc/redis': 'src/redis/index.js' });
  });

  it('finds a block with its first line, strips TSDoc stars, and honours the marker', () => {
    const optedOut: string[] = [];
    const page = 'text\n\n```ts\nconst a = 1;\n```\n\n<!-- not compiled -->\n```ts\nnope\n```\n\n```sh\nls\n```\n';
    expect(markdownSnippets('p.md', page, optedOut)).toEqual([{ file: 'p.md', line: 4, code: 'const a = 1;' }]);
    expect(optedOut).toEqual(['p.md:8']);
    const source = 'x;\n/**\n * Does it.\n *\n * @example\n * ```ts\n * const b = 2;\n *   const c = 3;\n * ```\n */\n';
    expect(exampleSnippets('s.ts', source)).toEqual([{ file: 's.ts', line: 7, code: 'const b = 2;\n  const c = 3;' }]);
  });

  it('reports a diagnostic at its line in the page', () => {
    expect(compile([{ file: 'p.md', line: 10, code: "import { Controller } from 'rrxc';\nconst c: number = new Controller();" }])).toEqual([
      expect.stringMatching(/^p\.md:11: Type 'Controller<unknown, unknown>' is not assignable to type 'number'/),
    ]);
  });
});
