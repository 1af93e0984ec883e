/**
 * Fuzz of `POST /v1/runs` and `POST /v1/workflows` (issue 8): random JSON, random YAML, alias
 * bombs, deep nesting, huge strings, unicode, prototype and NUL-byte ids. Never a 5xx; every
 * refusal is a 4xx in the API's error shape with a non-empty `issues` list.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
});
afterAll(async () => engine.close());

type Body = { text: string; type: 'application/json' | 'application/yaml' };

/** Posts `body` to both routes (as the ad-hoc run's workflow, and as a definition) and checks the answers. */
async function expectWellFormedAnswers(definition: Body): Promise<void> {
  const adHoc =
    definition.type === 'application/json'
      ? `{"workflow": ${definition.text}}`
      : `workflow:\n${definition.text.replace(/^/gm, '  ')}\n`;
  for (const [path, text] of [
    ['/v1/workflows', definition.text],
    ['/v1/runs', adHoc],
  ] as const) {
    const res = await engine.request('POST', path, text, { 'content-type': definition.type });
    expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
    if (res.status >= 400) {
      expect(typeof res.body.error.code).toBe('string');
      expect(res.body.error.issues.length, JSON.stringify(res.body)).toBeGreaterThan(0);
      for (const issue of res.body.error.issues) {
        expect(typeof issue.path).toBe('string');
        expect(issue.message.length).toBeGreaterThan(0);
      }
    }
  }
}

const json = (value: unknown): Body => ({ text: JSON.stringify(value) ?? 'null', type: 'application/json' });
const yaml = (text: string): Body => ({ text, type: 'application/yaml' });

const oddId = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'a\u0000b',
    '\u0000',
    'toString',
    'hasOwnProperty',
  ),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const expression = fc.constantFrom(
  '${{ inputs.x }}',
  '${{ steps.a.outputs.y }}',
  '${{ secrets.S }}',
  '${{ ',
  '${{ }}',
  "'${{ env.X }}'",
  '${{ fromJSON(toJSON(steps)) }}',
  '${{ github.x[0]( }}',
);
/** Definition-shaped values: reach past the schema into the graph and expression checks. */
const definition = fc
  .record({
    name: fc.oneof(fc.constantFrom('ok', 'fuzz-1'), oddId),
    ids: fc.uniqueArray(fc.oneof(fc.constantFrom('a', 'b', 'c', 'd'), oddId), { minLength: 1, maxLength: 8 }),
    needs: fc.array(fc.array(fc.nat(10), { maxLength: 4 }), { maxLength: 8 }),
    runs: fc.array(fc.oneof(fc.constant('true'), expression, fc.string({ maxLength: 30 })), { maxLength: 8 }),
    extra: fc.option(
      fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
    ),
  })
  .map(({ name, ids, needs, runs, extra }) => {
    // Built as own properties, as JSON.parse would (an assignment to "__proto__" would not be one).
    const steps: Record<string, unknown> = {};
    ids.forEach((id, i) => {
      const step = {
        needs: (needs[i] ?? []).map((n) => ids[n % ids.length]),
        run: runs[i] ?? 'true',
        ...extra,
      };
      Object.defineProperty(steps, id, { value: step, enumerable: true, writable: true, configurable: true });
    });
    return { name, steps };
  });

describe('definition fuzz', () => {
  it('answers random JSON and definition-shaped values with 2xx or a 4xx with issues', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue(), definition), async (value) => {
        await expectWellFormedAnswers(json(value));
        await expectWellFormedAnswers(yaml(stringify(value)));
      }),
      { numRuns: 150 },
    );
  });

  it('answers random YAML text with a 4xx with issues', async () => {
    const yamlish = fc.string({
      unit: fc.constantFrom(...'ab:-&*![]{},"\'|>#\n \t?%@`\u0000\u00e9\u{1F600}<<'.split('')),
      maxLength: 120,
    });
    await fc.assert(
      fc.asyncProperty(yamlish, async (text) => expectWellFormedAnswers(yaml(text))),
      { numRuns: 200 },
    );
  });

  it('refuses alias bombs, deep nesting and huge strings with a 4xx', async () => {
    const bomb = fc
      .record({ width: fc.integer({ min: 2, max: 12 }), levels: fc.integer({ min: 1, max: 9 }) })
      .map(({ width, levels }) => {
        const lines = ['name: lol', `a0: &a0 [${Array(width).fill('x').join(', ')}]`];
        for (let l = 1; l <= levels; l++)
          lines.push(
            `a${l}: &a${l} [${Array(width)
              .fill(`*a${l - 1}`)
              .join(', ')}]`,
          );
        lines.push(`steps: { s: { run: x, needs: *a${levels} } }`);
        return yaml(lines.join('\n'));
      });
    const deep = fc
      .record({ depth: fc.integer({ min: 1, max: 5000 }), yaml: fc.boolean() })
      .map(({ depth, yaml: y }) => {
        const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
        return y
          ? yaml(`name: deep\nsteps: { a: { run: x, needs: ${nested} } }`)
          : { text: nested, type: 'application/json' as const };
      });
    const huge = fc
      .integer({ min: 100_000, max: 900_000 })
      .map((n) => json({ name: 'x'.repeat(n), steps: { a: { run: 'x' } } }));
    await fc.assert(
      fc.asyncProperty(fc.oneof(bomb, deep, huge), async (body) => expectWellFormedAnswers(body)),
      { numRuns: 40 },
    );
  });

  it('refuses prototype ids by name, in JSON and YAML alike, never dropping them', async () => {
    for (const id of ['__proto__', 'constructor', 'prototype']) {
      const bodies = [
        `{"name": "p", "steps": {"a": {"run": "x"}, "${id}": {"run": "y"}}}`,
        `name: p\nsteps:\n  a: { run: x }\n  ${id}: { run: y }\n`,
      ];
      for (const [i, text] of bodies.entries()) {
        const type = i === 0 ? 'application/json' : 'application/yaml';
        const res = await engine.request('POST', '/v1/workflows', text, { 'content-type': type });
        expect(res.status).toBe(400);
        expect(res.body.error.issues).toContainEqual({
          path: `steps.${id}`,
          message: `"${id}" is a reserved id`,
        });
      }
    }
  });
});
