/**
 * Function steps through the executor interface, in real sandboxed VMs: outputs, context, logs,
 * progress, events, TypeScript, modules, and every way a function can fail.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { VmExecutor } from '../../src/workers/vm/index.ts';
import { fnStep, Recorder } from './vm-harness.ts';

const executor = new VmExecutor({ poolSize: 1 });
afterAll(() => executor.close());

describe('function steps', () => {
  it('returns outputs, sees its context and env, streams logs, progress and events', async () => {
    const ctx = new Recorder();
    const step = fnStep(
      `export default async (ctx) => {
        ctx.log('hello', { n: 1 });
        console.error('to stderr');
        ctx.progress(40, 'reading');
        ctx.emit('artifact.published', { name: ctx.inputs.name });
        return {
          upper: ctx.inputs.name.toUpperCase(),
          previous: ctx.steps.build.outputs.artifact,
          run: ctx.run, secret: ctx.secrets.TOKEN, envFromCtx: ctx.env.GREETING,
          processEnv: process.env.GREETING, key: process.env.CONVEYOR_IDEMPOTENCY_KEY,
          aborted: ctx.signal.aborted,
        };
      }`,
      {},
      {
        env: { GREETING: 'hi' },
        context: {
          inputs: { name: 'app' },
          steps: { build: { outputs: { artifact: 'app.tgz' } } },
          env: { GREETING: 'hi' },
          secrets: { TOKEN: 's3cr3t' },
          run: { id: 'run_1', attempt: 2 },
        },
      },
    );
    const result = await executor.run(step, ctx);
    expect(result.error).toBeUndefined();
    expect(result.exitCode).toBe(0);
    expect(result.outputs).toEqual({
      upper: 'APP',
      previous: 'app.tgz',
      run: { id: 'run_1', attempt: 2 },
      secret: 's3cr3t',
      envFromCtx: 'hi',
      processEnv: 'hi',
      key: 'run_test:step',
      aborted: false,
    });
    expect(ctx.text).toContain('hello { n: 1 }\n');
    expect(ctx.text).toContain('to stderr\n');
    expect(ctx.progressEvents).toEqual([{ percent: 40, message: 'reading' }]);
    expect(result.events).toEqual([{ type: 'artifact.published', payload: { name: 'app' } }]);
  });

  it('strips TypeScript and reports stack lines of the source as written', async () => {
    const source = [
      'interface Out { n: number }',
      'export default async (): Promise<Out> => {',
      '  const n: number = 2;',
      "  if (n > 1) throw new Error('typed boom');",
      '  return { n };',
      '};',
    ].join('\n');
    const result = await executor.run(fnStep(source), new Recorder());
    expect(result.error?.code).toBe('function_error');
    expect(result.error?.message).toContain('Error: typed boom');
    expect(result.error?.message).toMatch(/function\.ts:4:/);
  });

  it('fails a syntax error before running anything, without retry', async () => {
    const result = await executor.run(fnStep('export default async ( => 1'), new Recorder());
    expect(result.error).toMatchObject({ code: 'function_syntax', retriable: false });
    expect(result.error?.message).toMatch(/line 1/);
  });

  it('masks secret values in its own error messages', async () => {
    const step = fnStep(
      "export default async () => { throw new Error('token is hunter22') }",
      {},
      {
        secrets: ['hunter22'],
      },
    );
    const result = await executor.run(step, new Recorder());
    expect(result.error?.message).toContain('token is ***');
    expect(result.error?.message).not.toContain('hunter22');
  });

  it.each([
    ['a BigInt', 'return { n: 10n }', /BigInt|bigint/],
    ['a Map', 'return { m: new Map([[1, 2]]) }', /Map/],
    ['a forgotten await', 'return { p: Promise.resolve(1) }', /Promise/],
    ['a cycle', 'const o = {}; o.self = o; return o', /circular/i],
    ['an array', 'return [1, 2]', /object of outputs/],
  ])('refuses %s as outputs with a clear message', async (_name, body, pattern) => {
    const result = await executor.run(fnStep(`export default async () => { ${body} }`), new Recorder());
    expect(result.error?.code).toBe('bad_output');
    expect(result.error?.message).toMatch(pattern);
  });

  it('fails outputs over the cap', async () => {
    const step = fnStep(
      "export default async () => ({ big: 'x'.repeat(2000) })",
      {},
      { limits: { maxOutputBytes: 1000 } },
    );
    const result = await executor.run(step, new Recorder());
    expect(result.error?.code).toBe('output_limit');
  });

  it('fails with the exit code when the function calls process.exit(3)', async () => {
    const result = await executor.run(
      fnStep('export default async () => { process.exit(3) }'),
      new Recorder(),
    );
    expect(result.exitCode).toBe(3);
    expect(result.error?.code).toBe('guest_exit');
    expect(result.error?.message).toContain('process.exit(3)');
  });

  it('fails on an uncaught exception thrown outside the awaited chain', async () => {
    const source = `export default async () => {
      setTimeout(() => { throw new TypeError('late failure') }, 1);
      await new Promise(() => {});
    }`;
    const result = await executor.run(fnStep(source), new Recorder());
    expect(result.error?.code).toBe('uncaught_exception');
    expect(result.error?.message).toContain('TypeError: late failure');
  });

  it('fails on an unhandled rejection', async () => {
    const source = `export default async () => {
      Promise.reject(new Error('nobody listens'));
      await new Promise(() => {});
    }`;
    const result = await executor.run(fnStep(source), new Recorder());
    expect(result.error?.code).toBe('uncaught_exception');
    expect(result.error?.message).toContain('nobody listens');
  });

  it('needs a default export function', async () => {
    const result = await executor.run(fnStep('export const x = 1;'), new Recorder());
    expect(result.error?.code).toBe('function_load_failed');
    expect(result.error?.message).toContain('default export');
  });

  it('imports a package named in vm.modules, and no other', async () => {
    const source = `import YAML from 'yaml';
      export default async () => ({ text: YAML.stringify({ a: [1, 2] }) })`;
    const ok = await executor.run(fnStep(source, { modules: ['yaml'] }), new Recorder());
    expect(ok.error).toBeUndefined();
    expect(ok.outputs).toEqual({ text: 'a:\n  - 1\n  - 2\n' });

    const denied = await executor.run(fnStep(source), new Recorder());
    expect(denied.error?.code).toBe('function_load_failed');
    expect(denied.error?.message).toMatch(/yaml/);
    expect(denied.error?.message).toContain('vm.modules');
  });

  it('refuses a module the worker does not have', async () => {
    const result = await executor.run(
      fnStep('export default async () => ({})', { modules: ['no-such-pkg-xyz'] }),
      new Recorder(),
    );
    expect(result.error).toMatchObject({ code: 'module_not_found', retriable: false });
  });

  it('rejects invalid vm options with the field named', async () => {
    const result = await executor.run(
      fnStep('export default async () => ({})', { memoryMb: 4 }),
      new Recorder(),
    );
    expect(result.error).toMatchObject({ code: 'invalid_vm_options', retriable: false });
    expect(result.error?.message).toContain('vm.memoryMb');
  });

  it('asks for enough pids for Node.js itself', async () => {
    const result = await executor.run(fnStep('export default async () => ({})', { pids: 4 }), new Recorder());
    expect(result.error).toMatchObject({
      code: 'invalid_vm_options',
      message: expect.stringContaining('vm.pids'),
    });
  });

  it('has no child processes, worker threads or native addons', async () => {
    const source = `import { execSync } from 'node:child_process';
      import { Worker } from 'node:worker_threads';
      const attempt = (f) => { try { f(); return 'allowed' } catch (e) { return e.code } };
      export default async () => ({
        exec: attempt(() => execSync('true')),
        worker: attempt(() => new Worker('1', { eval: true })),
        addon: attempt(() => process.dlopen({ exports: {} }, '/tmp/x.node')),
      })`;
    const result = await executor.run(fnStep(source), new Recorder());
    expect(result.outputs).toEqual({
      exec: 'ERR_ACCESS_DENIED',
      worker: 'ERR_ACCESS_DENIED',
      addon: 'ERR_DLOPEN_DISABLED',
    });
  });
});
