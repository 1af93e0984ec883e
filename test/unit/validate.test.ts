import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import { parseBody, validateDefinition } from '../../src/flows/index.ts';

function issuesOf(def: unknown, hosts?: Record<string, string[]>) {
  try {
    validateDefinition(def, hosts ? { hosts: { resolve: (n) => hosts[n] } } : {});
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues;
  }
  throw new Error('expected a ValidationError');
}

describe('validateDefinition', () => {
  it('normalises a valid definition with defaults', () => {
    const wf = validateDefinition({
      name: 'deploy-app',
      inputs: { ref: { type: 'string', default: 'main' } },
      env: { NODE_ENV: 'production', N: 3 },
      defaults: { timeout: '10m', retries: { attempts: 2 } },
      steps: {
        build: { run: 'make' },
        test: {
          needs: 'build',
          run: 'make test',
          retries: { attempts: 3, backoff: 'exponential', delay: '2s' },
        },
        digest: { needs: ['build'], vm: { memoryMb: 128 }, function: 'export default async () => ({})' },
        deploy: {
          needs: ['test', 'digest'],
          if: "${{ inputs.ref == 'main' }}",
          run: 'echo ${{ steps.build.outputs.x }}',
          timeout: 300_000,
        },
      },
    });
    expect(wf.order).toEqual(['build', 'test', 'digest', 'deploy']);
    expect(wf.env).toEqual({ NODE_ENV: 'production', N: '3' });
    expect(wf.steps.build!.timeoutMs).toBe(600_000);
    expect(wf.steps.build!.retries).toEqual({ attempts: 2, backoff: 'fixed', delayMs: 1000, jitter: 0 });
    expect(wf.steps.test!.retries).toEqual({
      attempts: 3,
      backoff: 'exponential',
      delayMs: 2000,
      jitter: 0.2,
    });
    expect(wf.steps.test!.needs).toEqual(['build']);
    expect(wf.steps.digest!.executor).toBe('vm');
    expect(wf.steps.deploy!.if).toBe("inputs.ref == 'main'");
    expect(wf.steps.deploy!.timeoutMs).toBe(300_000);
    expect(wf.steps.deploy!.command).toEqual({
      text: 'echo ${CONVEYOR_EXPR_0}',
      exprs: ['steps.build.outputs.x'],
    });
  });

  it('names a cycle in order, and every other problem at once', () => {
    const issues = issuesOf({
      name: 'Bad Name!',
      inputs: { a: { type: 'string' } },
      steps: {
        a: { needs: ['b'], run: 'x' },
        b: { needs: ['c'], run: 'x' },
        c: { needs: ['a', 'zz', 'a'], run: 'x' },
        'bad id': { run: 'x' },
        empty: {},
        both: { run: 'x', function: 'y' },
        slow: { run: 'x', timeout: '5 minutes', retries: { attempts: 2, delay: 'later' } },
        expr: { run: 'echo ${{ inputs.a == }}', if: 'nope()', env: { X: '${{ github.sha }}' } },
        single: { run: "echo '${{ inputs.a }}'" },
        ahead: { run: 'echo ${{ steps.late.outputs.x }}' },
        late: { needs: ['ahead'], run: 'x' },
        unclosed: { run: 'echo ${{ inputs.a' },
      },
    });
    const byPath = (p: string) => issues.filter((i) => i.path === p).map((i) => i.message);
    expect(byPath('name')).toEqual(['must match [a-z0-9][a-z0-9-_]{0,63}']);
    expect(byPath('steps.a.needs')).toEqual(['cycle: a → b → c → a']);
    expect(byPath('steps.c.needs[1]')).toEqual(['unknown step "zz"']);
    expect(byPath('steps.c.needs[2]')).toEqual(['"a" is listed twice']);
    expect(byPath('steps.bad id')).toEqual(['step id must match [A-Za-z0-9_-]{1,64}']);
    expect(byPath('steps.empty')).toEqual(['a step needs "run" or "function"']);
    expect(byPath('steps.both')).toEqual(['a step has "run" or "function", not both']);
    expect(byPath('steps.slow.timeout')[0]).toMatch(/"5 minutes" is not a duration/);
    expect(byPath('steps.slow.retries.delay')[0]).toMatch(/"later" is not a duration/);
    expect(byPath('steps.expr.run')[0]).toMatch(/Unexpected end of expression/);
    expect(byPath('steps.expr.if')[0]).toMatch(/Unrecognized function: 'nope'/);
    expect(byPath('steps.expr.env.X')[0]).toMatch(/Unrecognized named-value: 'github'/);
    expect(byPath('steps.single.run')[0]).toMatch(/inside single quotes/);
    expect(byPath('steps.ahead.run')[0]).toMatch(/steps.late, which is not among this step's needs/);
    expect(byPath('steps.unclosed.run')[0]).toMatch(/never closed/);
  });

  it('reports schema errors together with graph errors', () => {
    const issues = issuesOf({
      name: 'x',
      steps: { a: { needs: ['b'], run: 'x', nedds: [] }, b: { needs: ['a'], run: 1 } },
    });
    expect(issues).toContainEqual({ path: 'steps.a', message: 'Unrecognized key: "nedds"' });
    expect(issues.some((i) => i.path === 'steps.b.run')).toBe(true);
    expect(issues.some((i) => i.message.startsWith('cycle: '))).toBe(true);
  });

  it('rejects a self-dependency, an empty workflow and a missing name', () => {
    expect(issuesOf({ name: 'x', steps: { a: { needs: ['a'], run: 'x' } } })).toContainEqual({
      path: 'steps.a.needs[0]',
      message: 'a step cannot need itself',
    });
    expect(issuesOf({ name: 'x', steps: {} })).toContainEqual({
      path: 'steps',
      message: 'a workflow needs at least one step',
    });
    expect(issuesOf({ steps: { a: { run: 'x' } } }).map((i) => i.path)).toContain('name');
  });

  it('checks hosts against the inventory', () => {
    expect(issuesOf({ name: 'x', steps: { a: { hosts: 'web', run: 'x' } } })).toContainEqual({
      path: 'steps.a.hosts',
      message: 'unknown host or group "web": the inventory is empty',
    });
    expect(issuesOf({ name: 'x', steps: { a: { hosts: 'db', run: 'x' } } }, { web: ['w1'] })).toContainEqual({
      path: 'steps.a.hosts',
      message: 'unknown host or group "db"',
    });
    const wf = validateDefinition(
      { name: 'x', steps: { a: { hosts: 'web', run: 'x', strategy: { maxParallel: 2 } } } },
      {
        hosts: { resolve: (n) => (n === 'web' ? ['w1', 'w2'] : undefined) },
      },
    );
    expect(wf.steps.a!.executor).toBe('ssh');
  });

  it('accepts runsOn tags (sorted, so one tag set is one queue) and refuses malformed ones', () => {
    const wf = validateDefinition({ name: 'x', steps: { a: { run: 'x', runsOn: ['gpu', 'eu'] } } });
    expect(wf.steps.a!.runsOn).toEqual(['eu', 'gpu']);
    const issues = issuesOf({
      name: 'x',
      steps: {
        a: { run: 'x', runsOn: ['GPU', 'a:b', 'ok', 'ok'] },
        b: { run: 'x', runsOn: ['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8', 't9'] },
      },
    });
    expect(issues).toContainEqual({
      path: 'steps.a.runsOn[0]',
      message: 'a tag must match [a-z0-9][a-z0-9_.-]{0,31}',
    });
    expect(issues).toContainEqual({
      path: 'steps.a.runsOn[1]',
      message: 'a tag must match [a-z0-9][a-z0-9_.-]{0,31}',
    });
    expect(issues).toContainEqual({ path: 'steps.a.runsOn[3]', message: '"ok" is listed twice' });
    expect(issues).toContainEqual({
      path: 'steps.b.runsOn',
      message: 'at most 8 tags (a worker serves at most 8)',
    });
  });

  it('rejects reserved and malformed env names and bad input defaults', () => {
    const issues = issuesOf({
      name: 'x',
      inputs: { n: { type: 'number', default: 'three' } },
      env: { CONVEYOR_OUTPUT: 'x', '1BAD': 'y' },
      steps: { a: { run: 'x' } },
    });
    expect(issues.map((i) => i.path).sort()).toEqual(['env.1BAD', 'env.CONVEYOR_OUTPUT', 'inputs.n.default']);
  });

  it('keeps durations between 1 ms and 30 days, with the path of each one out of range', () => {
    const big = Number(`1${'0'.repeat(400)}`); // what JSON.parse makes of a 400-digit number
    const issues = issuesOf({
      name: 'x',
      defaults: { timeout: 0, retries: { attempts: 2, delay: '31d' } },
      steps: {
        zero: { run: 'x', timeout: '0s' },
        negative: { run: 'x', timeout: -5 },
        huge: { run: 'x', timeout: big, retries: { attempts: 2, delay: 1e300 } },
        digits: { run: 'x', timeout: `${'9'.repeat(400)}ms` },
        vm: { run: 'x', vm: { timeout: '30d1ms' } },
        vmLong: { run: 'x', vm: { timeout: 2_592_000_001 } },
        growing: { run: 'x', retries: { attempts: 30, backoff: 'exponential', delay: '1s' } },
      },
    });
    const byPath = (p: string) => issues.filter((i) => i.path === p).map((i) => i.message);
    expect(byPath('defaults.timeout')).toEqual(['0 is not a positive duration: use at least 1 ms']);
    expect(byPath('defaults.retries.delay')[0]).toMatch(/"31d" is longer than the maximum of 30 days/);
    expect(byPath('steps.zero.timeout')[0]).toMatch(/not a positive duration/);
    expect(byPath('steps.negative.timeout')[0]).toMatch(/not a positive duration/);
    expect(byPath('steps.huge.timeout')[0]).toMatch(/too large to represent is longer than the maximum/);
    expect(byPath('steps.huge.retries.delay')[0]).toMatch(/1e\+300 is longer than the maximum/);
    expect(byPath('steps.digits.timeout')[0]).toMatch(/\(402 characters\)" is longer than the maximum/);
    expect(byPath('steps.vm.vm.timeout')[0]).toMatch(/is not a duration/);
    expect(byPath('steps.vmLong.vm.timeout')[0]).toMatch(/longer than the maximum of 30 days/);
    expect(byPath('steps.growing.retries.attempts')[0]).toMatch(
      /retry 29 would wait .* days, over the maximum/,
    );
  });

  it('accepts every duration syntax up to 30 days inclusive', () => {
    const wf = validateDefinition({
      name: 'x',
      defaults: { timeout: '25d' },
      steps: {
        a: { run: 'x' },
        b: { run: 'x', timeout: '30d', retries: { attempts: 3, delay: '1.5h' } },
        c: { run: 'x', timeout: 2_592_000_000, vm: { timeout: '500ms' } },
        d: { run: 'x', timeout: '10m', retries: { attempts: 12, backoff: 'exponential', delay: '30s' } },
        e: { run: 'x', timeout: 0.6 },
      },
    });
    expect(wf.steps.a!.timeoutMs).toBe(25 * 86_400_000);
    expect(wf.steps.b!.timeoutMs).toBe(30 * 86_400_000);
    expect(wf.steps.b!.retries.delayMs).toBe(5_400_000);
    expect(wf.steps.c!.timeoutMs).toBe(500);
    expect(wf.steps.d!.timeoutMs).toBe(600_000);
    expect(wf.steps.e!.timeoutMs).toBe(1);
  });

  it('refuses inputs.x that the workflow does not declare, wherever an expression reads it', () => {
    const issues = issuesOf({
      name: 'x',
      inputs: { ref: { type: 'string' } },
      env: { TOP: '${{ inputs.topLevel }}' },
      steps: {
        a: {
          run: 'echo ${{ inputs.ref }} ${{ inputs.REF }} ${{ inputs.missing }}',
          env: { E: "${{ inputs['bracketed'] }}" },
          cwd: '${{ inputs.dir }}',
          if: "inputs.flag == 'yes' && inputs.ref != ''",
        },
        b: { run: 'echo ${{ toJSON(inputs) }} ${{ inputs[inputs.ref] }}' },
      },
    });
    expect(issues).toEqual([
      { path: 'env.TOP', message: 'expression reads inputs.topLevel, which is not declared under "inputs"' },
      {
        path: 'steps.a.run',
        message: 'expression reads inputs.missing, which is not declared under "inputs"',
      },
      {
        path: 'steps.a.env.E',
        message: 'expression reads inputs.bracketed, which is not declared under "inputs"',
      },
      { path: 'steps.a.cwd', message: 'expression reads inputs.dir, which is not declared under "inputs"' },
      { path: 'steps.a.if', message: 'expression reads inputs.flag, which is not declared under "inputs"' },
    ]);
  });
});

describe('parseBody', () => {
  it('parses JSON and YAML alike and names duplicate keys by path', () => {
    expect(parseBody('{"a": {"b": 1}}', 'json')).toEqual({ a: { b: 1 } });
    expect(parseBody('a:\n  b: 1\n', 'yaml')).toEqual({ a: { b: 1 } });
    expect(() => parseBody('steps:\n  a: {run: x}\n  a: {run: y}\n', 'yaml')).toThrow(ValidationError);
    try {
      parseBody('{"steps": {"build": {}, "build": {}}, "x": [{"k":1,"k":2}]}', 'json');
    } catch (err) {
      expect((err as ValidationError).issues).toEqual([
        { path: 'steps.build', message: 'duplicate key "build"' },
        { path: 'x[0].k', message: 'duplicate key "k"' },
      ]);
    }
  });

  it('rejects malformed text with a message', () => {
    expect(() => parseBody('{"a": ', 'json')).toThrow(/not valid JSON/);
    expect(() => parseBody('a: [1, 2', 'yaml')).toThrow(/not valid YAML/);
  });
});
