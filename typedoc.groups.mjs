// @ts-check
// A TypeDoc plugin (typedoc.json loads it): puts every error class — RrxcError
// and what extends it — in the group "Errors", which the groupOrder of
// typedoc.json puts last, so that the pages of rrxc and rrxc/redis open with
// their entry points rather than with BackplaneError and CapacityError. A
// `@group Errors` tag on each class would say the same, class by class; this
// says it once, by the rule the code keeps: every error extends RrxcError.
import { Comment, CommentTag, Converter, DeclarationReflection, ReflectionKind } from 'typedoc';

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => {
    for (const reflection of context.project.getReflectionsByKind(ReflectionKind.Class)) {
      if (!(reflection instanceof DeclarationReflection) || !isError(reflection)) continue;
      reflection.comment ??= new Comment();
      if (!reflection.comment.blockTags.some((tag) => tag.tag === '@group')) {
        reflection.comment.blockTags.push(new CommentTag('@group', [{ kind: 'text', text: 'Errors' }]));
      }
    }
  });
}

/**
 * Whether a class is RrxcError or extends it, through its chain of bases.
 * @param {import('typedoc').DeclarationReflection} reflection
 */
function isError(reflection) {
  /** @type {import('typedoc').Reflection | undefined} */
  let at = reflection;
  for (let depth = 0; at instanceof DeclarationReflection && depth < 16; depth++) {
    if (at.name === 'RrxcError') return true;
    const base = at.extendedTypes?.[0];
    at = base?.type === 'reference' ? base.reflection : undefined;
  }
  return false;
}
