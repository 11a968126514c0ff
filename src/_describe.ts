// How error messages name the values they are about.

/**
 * Describes a value for an error message: ``\`42\` (number)``. Never throws,
 * not even for objects without a prototype.
 */
export function describe(value: unknown): string {
  if (typeof value === 'string') {
    return `${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)} (string of ${value.length})`;
  }
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return `\`${String(value)}\` (${value === null ? 'null' : typeof value})`;
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name;
  return `an object (${name ?? 'no prototype'})`;
}

/** @internal What a thrown value says, for a message: an error's message, anything else as a string. */
export function describeCause(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
