/**
 * API tokens: `role:token` pairs from `CONVEYOR_API_TOKENS` / `CONVEYOR_API_TOKENS_FILE`, kept
 * only as SHA-256 digests and compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type Issue, ValidationError } from '../../errors.ts';

/** What a token may do; each role includes the ones before it. */
export const ROLES = ['read', 'run', 'admin'] as const;

/** A token's role. */
export type Role = (typeof ROLES)[number];

/** One configured token: its role and the SHA-256 digest of its value (the value is not kept). */
export interface ApiToken {
  role: Role;
  digest: Buffer;
}

/** True when `role` includes `needed` (admin ⊇ run ⊇ read). */
export function roleIncludes(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Compares two secrets in constant time: both are hashed to 32 bytes first, so inputs of any
 * length compare without throwing and without the time revealing the expected length.
 */
export function safeEqual(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/**
 * The role of the presented token, or undefined when it matches none. Every token is compared
 * (no early exit), so the time does not tell which one matched or how many there are.
 */
export function findRole(tokens: readonly ApiToken[], presented: string): Role | undefined {
  const candidate = digest(presented);
  let found: Role | undefined;
  for (const token of tokens) {
    if (timingSafeEqual(candidate, token.digest) && (!found || roleIncludes(token.role, found))) {
      found = token.role;
    }
  }
  return found;
}

/**
 * Parses `role:token` entries separated by commas or newlines (`#` starts a comment line in a
 * file). A bare token is `admin`. A value with a `:` must start with a known role, so a typo
 * such as `raed:x` is an error rather than an admin token. Messages never quote a token.
 */
export function parseTokens(text: string, source: string): ApiToken[] {
  const issues: Issue[] = [];
  const tokens: ApiToken[] = [];
  const seen = new Map<string, Role>();
  const entries = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .flatMap((line) => line.split(','))
    .map((entry) => entry.trim())
    .filter(Boolean);
  entries.forEach((entry, index) => {
    const colon = entry.indexOf(':');
    const roleName = colon < 0 ? 'admin' : entry.slice(0, colon).trim();
    const value = colon < 0 ? entry : entry.slice(colon + 1).trim();
    const where = `${source}[${index}]`;
    if (!(ROLES as readonly string[]).includes(roleName)) {
      issues.push({ path: where, message: `unknown role "${roleName}" (use ${ROLES.join(', ')})` });
      return;
    }
    if (value === '') {
      issues.push({ path: where, message: `role "${roleName}" has an empty token` });
      return;
    }
    const role = roleName as Role;
    const previous = seen.get(value);
    if (previous && previous !== role) {
      issues.push({ path: where, message: `the same token is given both "${previous}" and "${role}"` });
      return;
    }
    seen.set(value, role);
    tokens.push({ role, digest: digest(value) });
  });
  if (issues.length) {
    throw new ValidationError(
      `invalid ${source}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  return tokens;
}
