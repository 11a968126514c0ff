import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** README.md and every page in docs/ (docs/api is typedoc's output, HTML). */
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Where `npm run docs` writes the API reference: linked to, but only there once built. */
const API_OUT = (JSON.parse(read('typedoc.json')) as { out: string }).out;

describe('the adapter contract tables', () => {
  // src/adapters.ts is the source; docs/guide.md keeps a copy for readers.
  it('are the same in docs/guide.md as in the TSDoc of src/adapters.ts', () => {
    const source = contractTables(tsdocText(read('src/adapters.ts')));
    expect(source.length).toBeGreaterThan(0);
    expect(contractTables(withoutFences(read('docs/guide.md')))).toEqual(source);
  });
});

describe('the pages', () => {
  it.each(PAGES)('%s has only relative links that resolve, anchors included', (page) => {
    const broken = links(page).filter((target) => !resolves(page, target));
    expect(broken).toEqual([]);
  });

  it.each(PAGES)('%s names only repository paths that exist', (page) => {
    const missing = withoutCode(read(page)).spans.filter((span) => REPO_PATH.test(span) && !existsSync(join(ROOT, span)));
    expect(missing).toEqual([]);
  });

  it("README's layout has a line for every top-level file and folder of src/", () => {
    const readme = read('README.md');
    const layout = readme.slice(readme.indexOf('## Development')).match(/```\w*\n(src\/\n[\s\S]*?)```/)?.[1] ?? '';
    const listed = new Set([...layout.matchAll(/^ {2}(\S+)/gm)].flatMap((m) => m[1]!.split('/').filter(Boolean)));
    const entries = readdirSync(join(ROOT, 'src'), { withFileTypes: true }).map((e) => e.name);
    expect(entries.filter((name) => !listed.has(name))).toEqual([]);
  });
});

/** A code span that names a file or folder of the repository. */
const REPO_PATH = /^(?:src|test|bench|examples|docs)\/[\w./-]*$/;

/** The text of the TSDoc comments of a TypeScript file, without their leading ` * `. */
function tsdocText(source: string): string {
  return [...source.matchAll(/\/\*\*([\s\S]*?)\*\//g)].map((m) => m[1]!.replace(/^[ \t]*\* ?/gm, '')).join('\n');
}

/** The Markdown tables headed `| method | must |`, each as its rows with whitespace normalised. */
function contractTables(markdown: string): string[][] {
  const tables: string[][] = [];
  let table: string[] | undefined;
  for (const line of markdown.split('\n')) {
    const row = line.trim().startsWith('|') ? normalise(line) : undefined;
    if (row === undefined) table = undefined;
    else if (table !== undefined) table.push(row);
    else if (row === '|method|must|') tables.push((table = [row]));
  }
  return tables;
}

/** A table row with the whitespace around its cells removed and runs inside them made one space. */
function normalise(row: string): string {
  return row.trim().replace(/\s*\|\s*/g, '|').replace(/\s+/g, ' ');
}

/** Markdown without its fenced code blocks. */
function withoutFences(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '');
}

/** Markdown without fenced blocks and with code spans emptied, and the spans' contents. */
function withoutCode(markdown: string): { text: string; spans: string[] } {
  const spans: string[] = [];
  const text = withoutFences(markdown).replace(/`([^`\n]+)`/g, (_, span: string) => {
      spans.push(span);
      return '``';
    });
  return { text, spans };
}

/** The relative link targets of a page, outside code: Markdown links and images, reference definitions, HTML `href`/`src`. */
function links(page: string): string[] {
  const { text } = withoutCode(read(page));
  const targets = [
    ...[...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!),
    ...[...text.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)].map((m) => m[1]!),
    ...[...text.matchAll(/\s(?:href|src)="([^"]+)"/g)].map((m) => m[1]!),
  ];
  return targets.filter((target) => !/^(?:[a-z][a-z\d+.-]*:|\/\/)/i.test(target));
}

/** Whether `target`, linked from `page`, names a file or folder of the repository (and, in a Markdown page, an anchor it has). */
function resolves(page: string, target: string): boolean {
  const [path = '', fragment] = target.split('#', 2);
  const file = path === '' ? join(ROOT, page) : resolve(ROOT, dirname(page), decodeURIComponent(path));
  const inRepo = relative(ROOT, file);
  if (inRepo.startsWith('..')) return false;
  if (`${inRepo}/`.startsWith(`${API_OUT.replace(/\/?$/, '/')}`) && !existsSync(join(ROOT, API_OUT))) return true;
  if (!existsSync(file)) return false;
  if (fragment === undefined || !file.endsWith('.md')) return true;
  return anchors(readFileSync(file, 'utf8')).has(decodeURIComponent(fragment));
}

/** The anchors GitHub makes for a Markdown page: a slug per heading (`-1`, `-2`… for repeats), and explicit `id`s. */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, heading] of withoutFences(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const text = heading!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '');
    const slug = text.toLowerCase().replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '').replace(/\s/g, '-');
    const repeats = seen.get(slug) ?? 0;
    seen.set(slug, repeats + 1);
    found.add(repeats === 0 ? slug : `${slug}-${repeats}`);
  }
  for (const [, id] of markdown.matchAll(/\s(?:id|name)="([^"]+)"/g)) found.add(id!);
  return found;
}
