/**
 * Glob lists of `on.push` (`branches`, `tags`, `paths`) as GitHub Actions reads them: patterns in
 * order, a `!pattern` excluding what earlier patterns included, `*` not crossing `/`, `**`
 * crossing it. Matching is picomatch's; checks at submission refuse what it would silently
 * treat as a literal or as "matches nothing".
 */
import picomatch from 'picomatch';

const OPTIONS: picomatch.PicomatchOptions = { dot: true };
const cache = new Map<string, (value: string) => boolean>();

function matcher(pattern: string): (value: string) => boolean {
  let found = cache.get(pattern);
  if (!found) {
    found = picomatch(pattern, OPTIONS);
    // Patterns come from registered definitions: a bounded set, but keep the cache bounded anyway.
    if (cache.size > 10_000) cache.clear();
    cache.set(pattern, found);
  }
  return found;
}

/** True when `value` is included by the ordered list (the last pattern that matches decides). */
export function matchesGlobList(patterns: readonly string[], value: string): boolean {
  let included = false;
  for (const pattern of patterns) {
    if (pattern.startsWith('!')) {
      if (included && matcher(pattern.slice(1))(value)) included = false;
    } else if (!included && matcher(pattern)(value)) included = true;
  }
  return included;
}

const PAIRS: Record<string, string> = { ']': '[', '}': '{', ')': '(' };

/** Brackets, braces and parentheses balance (a backslash escapes the next character). */
function balanced(pattern: string): boolean {
  const open: string[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\') i++;
    else if (ch === '[' || ch === '{' || ch === '(') open.push(ch);
    else if (ch in PAIRS && open.pop() !== PAIRS[ch]) return false;
  }
  return open.length === 0;
}

/** Characters git refuses in ref names (git check-ref-format), besides the glob syntax itself. */
const BAD_REF_CHARS = /[\s~^:\\]/;

/** Why a glob is unusable, or undefined when it is fine. `ref`: a branch or tag pattern. */
export function globProblem(pattern: string, kind: 'ref' | 'path'): string | undefined {
  const body = pattern.startsWith('!') ? pattern.slice(1) : pattern;
  if (body === '') return 'a pattern cannot be empty';
  if (pattern.length > 256) return 'a pattern is at most 256 characters';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(pattern)) return 'a pattern cannot contain control characters';
  if (kind === 'ref' && BAD_REF_CHARS.test(body))
    return 'a branch or tag pattern cannot contain whitespace, "~", "^", ":" or "\\"';
  if (!balanced(body)) return 'unbalanced "[", "{" or "(" in the pattern';
  try {
    // picomatch compiles what it cannot read to a regex that matches nothing.
    if (picomatch.makeRe(body, OPTIONS).source === '$^') return 'the pattern can never match';
  } catch (err) {
    return `the pattern does not parse: ${(err as Error).message}`;
  }
  return undefined;
}
