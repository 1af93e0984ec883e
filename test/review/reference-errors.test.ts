/**
 * Review of issue 8 (docs): docs/reference.md's error table (7.2) is the project's reference for
 * clients. It lists neither the codes that access control, limits and the HTTP layer now answer
 * (`unauthorized` 401, `forbidden` 403, `limit_exceeded` 400, `method_not_allowed` 405,
 * `headers_too_large` 431, `timeout` 408), and it says 401/403 and 429 "come with
 * authentication", which has come, with no 429 anywhere in the code.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const reference = readFileSync(new URL('../../docs/reference.md', import.meta.url), 'utf8');
const table = reference.slice(reference.indexOf('| status | `code` | when |'));
const rows = table.slice(0, table.indexOf('\n\n'));

describe('docs/reference.md error table (review 8)', () => {
  for (const [status, code] of [
    [401, 'unauthorized'],
    [403, 'forbidden'],
    [400, 'limit_exceeded'],
    [405, 'method_not_allowed'],
    [431, 'headers_too_large'],
  ] as const) {
    it(`lists ${status} \`${code}\`, which the API answers`, () => {
      expect(rows).toMatch(new RegExp(`\\| ${status} \\| \`${code}\``));
    });
  }

  it('does not announce auth and 429 as future work', () => {
    expect(reference).not.toContain('come with authentication');
  });
});
