/**
 * Path patterns as Hono writes them (`/v1/runs/:id/events`, a trailing `*` for "anything
 * below"), matched segment by segment. Shared by the access table and the 405 detection.
 */

/** Splits a request path into decoded, non-empty segments (`//` and a trailing `/` collapse). */
export function pathSegments(path: string): string[] {
  return path
    .split('/')
    .filter(Boolean)
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment;
      }
    });
}

/** True when `path` matches `pattern`: literal segments, `:param` for one segment, `*` for the rest. */
export function matchesPattern(pattern: string, path: string): boolean {
  const want = pattern.split('/').filter(Boolean);
  const have = pathSegments(path);
  for (let i = 0; i < want.length; i++) {
    const part = want[i]!;
    if (part === '*') return true;
    const segment = have[i];
    if (segment === undefined) return false;
    if (!part.startsWith(':') && part !== segment) return false;
  }
  return want.length === have.length;
}
