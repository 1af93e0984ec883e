import { describe, expect, it } from 'vitest';
import {
  conditionSource,
  evaluate,
  parseExpression,
  splitTemplate,
  toText,
  truthy,
} from '../../src/flows/index.ts';
import { shellTemplate } from '../../src/flows/shell-template.ts';

const ev = (src: string, ctx: Record<string, unknown> = {}, status?: Parameters<typeof evaluate>[2]) =>
  evaluate(parseExpression(src), ctx, status);

describe('expressions', () => {
  it('evaluates GitHub expressions over contexts', () => {
    const ctx = {
      inputs: { ref: 'main', n: 3 },
      steps: { build: { outputs: { artifact: 'app.tgz' }, status: 'succeeded' } },
    };
    expect(ev("inputs.ref == 'main'", ctx)).toBe(true);
    expect(ev("inputs.ref == 'MAIN'", ctx)).toBe(true); // GitHub compares strings case-insensitively
    expect(ev('inputs.n > 2 && inputs.n < 4', ctx)).toBe(true);
    expect(ev("steps.build.outputs['artifact']", ctx)).toBe('app.tgz');
    expect(ev("format('{0}-{1}', inputs.ref, inputs.n)", ctx)).toBe('main-3');
    expect(ev("contains(steps.build.outputs.artifact, 'tgz')", ctx)).toBe(true);
    expect(ev('steps.missing.outputs.x', ctx)).toBe(null);
    expect(ev('fromJSON(\'{"a":[1,2]}\').a[1]')).toBe(2);
  });

  it('implements the status functions from the status view', () => {
    const view = { success: false, failure: true, cancelled: false };
    expect(ev('success()', {}, view)).toBe(false);
    expect(ev('failure()', {}, view)).toBe(true);
    expect(ev('always()', {}, view)).toBe(true);
    expect(ev('cancelled()', {}, view)).toBe(false);
    expect(ev('success()')).toBe(true);
  });

  it('never evaluates JavaScript', () => {
    expect(() => parseExpression('process.exit(1)')).toThrow(/Unrecognized/);
    expect(() => parseExpression("constructor.constructor('return 1')()")).toThrow();
  });

  it('splits templates, respecting }} inside string literals', () => {
    expect(splitTemplate("a ${{ format('}}', 1) }} b ${{x}}")).toEqual([
      { kind: 'text', value: 'a ' },
      { kind: 'expr', source: "format('}}', 1)" },
      { kind: 'text', value: ' b ' },
      { kind: 'expr', source: 'x' },
    ]);
    expect(() => splitTemplate('echo ${{ x')).toThrow(/never closed/);
  });

  it('accepts conditions bare or wrapped, never mixed with text', () => {
    expect(conditionSource('${{ success() }}')).toBe('success()');
    expect(conditionSource('  always() ')).toBe('always()');
    expect(conditionSource(false)).toBe('false');
    expect(() => conditionSource('x ${{ a }}')).toThrow(/one expression/);
  });

  it('GitHub truthiness and text conversion', () => {
    expect([false, 0, '', null, Number.NaN].map(truthy)).toEqual([false, false, false, false, false]);
    expect([true, 1, 'false', [], {}].map(truthy)).toEqual([true, true, true, true, true]);
    expect([null, 'x', 3, true, { a: 1 }].map(toText)).toEqual(['', 'x', '3', 'true', '{"a":1}']);
  });

  it('turns run expressions into env references, refusing single quotes', () => {
    expect(shellTemplate('echo "${{ a.b }}"${{c}} \'lit\' $X')).toEqual({
      text: 'echo "${CONVEYOR_EXPR_0}"${CONVEYOR_EXPR_1} \'lit\' $X',
      exprs: ['a.b', 'c'],
    });
    expect(() => shellTemplate("echo 'x ${{ a }}'")).toThrow(/single quotes/);
    expect(shellTemplate(`echo "it's" \${{ a }}`).exprs).toEqual(['a']);
    expect(shellTemplate(`echo \\' \${{ a }}`).exprs).toEqual(['a']);
  });
});
