// The API reference as `npm run docs` builds it (typedoc.json, its plugin),
// converted in memory: its landing page is the README, whose relative links
// lead somewhere; its modules are named as users import them; and each
// module opens with its entry points, with the error classes last.
import { Application, Logger, LogLevel, ReflectionKind, type DeclarationReflection, type ProjectReflection } from 'typedoc';
import { beforeAll, describe, expect, it } from 'vitest';

/** Keeps what TypeDoc would print, instead of printing it. */
class KeptLogger extends Logger {
  readonly messages: { level: LogLevel; text: string }[] = [];
  override log(message: string, level: LogLevel): void {
    super.log(message, level);
    this.messages.push({ level, text: message });
  }
}

let project: ProjectReflection;
let logger: KeptLogger;
beforeAll(async () => {
  const app = await Application.bootstrapWithPlugins({ logLevel: 'None' });
  logger = new KeptLogger();
  app.logger = logger;
  const converted = await app.convert();
  if (converted === undefined) throw new Error(`typedoc did not convert: ${logger.messages.map((m) => m.text).join('\n')}`);
  app.validate(converted);
  project = converted;
}, 120_000);

const moduleNamed = (name: string): DeclarationReflection => {
  const found = project.children?.find((m) => m.kindOf(ReflectionKind.Module) && m.name === name);
  if (found === undefined) throw new Error(`no module ${name}`);
  return found;
};
const groupsOf = (reflection: DeclarationReflection): [string, string[]][] =>
  (reflection.groups ?? []).map((g) => [g.title, g.children.map((c) => c.name)]);

describe('the API reference', () => {
  it('opens with the README', () => {
    const text = (project.readme ?? []).map((part) => part.text).join('');
    expect(text).toMatch(/^# rrxc\n\nSync-over-async request\/response for Node\.js/);
  });

  it("resolves every relative link of the README, to one of the docs' pages or a file it copies", () => {
    const links = (project.readme ?? []).filter((part) => part.kind === 'relative-link');
    expect(links.length).toBeGreaterThan(5);
    expect(links.filter((link) => link.target === undefined).map((link) => link.text)).toEqual([]);
    expect(logger.messages.filter((m) => m.level >= LogLevel.Warn && /relative path|README/i.test(m.text)).map((m) => m.text)).toEqual([]);
  });

  it('names its modules as users import them', () => {
    const names = (project.children ?? []).filter((c) => c.kindOf(ReflectionKind.Module)).map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining(['rrxc', 'rrxc/integrations', 'rrxc/redis']));
    expect(names.filter((name) => !name.startsWith('rrxc'))).toEqual([]);
  });

  it('lists the classes of rrxc first, the Controller first of all, and its errors last', () => {
    const groups = groupsOf(moduleNamed('rrxc'));
    expect(groups[0]).toEqual(['Classes', ['Controller', 'Exchange', 'MemoryTagStore']]);
    const [title, errors] = groups.at(-1)!;
    expect(title).toBe('Errors');
    expect(errors).toContain('RrxcError');
    expect(errors.every((name) => name.endsWith('Error'))).toBe(true);
    expect(groups.slice(0, -1).flatMap(([, names]) => names).filter((name) => /Error$/.test(name))).toEqual([]);
  });

  it('lists the functions of rrxc/integrations first: consumeReplies, createCallbackListener, the framework integrations', () => {
    const [title, functions] = groupsOf(moduleNamed('rrxc/integrations'))[0]!;
    expect(title).toBe('Functions');
    expect(functions).toEqual(expect.arrayContaining(['consumeReplies', 'createCallbackListener', 'expressExchange', 'fastifyExchange', 'fastifyWebhook']));
    expect(functions[0]).toBe('consumeReplies');
  });

  it('lists RedisBackplane.connect first among its methods, and the re-exported BackplaneError last in rrxc/redis', () => {
    const redis = moduleNamed('rrxc/redis');
    const backplane = redis.children?.find((c) => c.name === 'RedisBackplane');
    const methods = groupsOf(backplane!).find(([title]) => title === 'Methods')?.[1];
    expect(methods?.[0]).toBe('connect');
    const groups = groupsOf(redis);
    expect(groups[0]).toEqual(['Classes', ['RedisBackplane', 'RedisTagStore']]);
    expect(groups.at(-1)?.[1]).toContain('BackplaneError');
  });
});
