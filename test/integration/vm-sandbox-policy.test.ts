/**
 * When the fences are not all there: a worker with the sandbox switched off or without a
 * working bubblewrap refuses sandboxed steps instead of running them unfenced, and a host
 * without writable cgroups falls back to rlimits — saying so — and still holds the limits.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { StepCancelledError } from '../../src/errors.ts';
import { VmExecutor } from '../../src/workers/vm/index.ts';
import { cmdStep, fnStep, isRoot, pidsWith, Recorder } from './vm-harness.ts';

const noSandbox = new VmExecutor({ sandbox: false, poolSize: 1 });
const noBwrap = new VmExecutor({ bwrapPath: '/nonexistent/bwrap', poolSize: 1 });
const noCgroups = new VmExecutor({ cgroups: 'off', poolSize: 0 });
afterAll(() => Promise.all([noSandbox.close(), noBwrap.close(), noCgroups.close()]));

const HELLO = "export default async () => ({ hello: 'world' })";

describe('a worker with the sandbox switched off', () => {
  it('refuses steps that ask for the sandbox (the default), functions and commands alike', async () => {
    for (const step of [fnStep(HELLO), cmdStep('true')]) {
      const result = await noSandbox.run(step, new Recorder());
      expect(result.error).toMatchObject({ code: 'sandbox_unavailable', retriable: false });
      expect(result.error?.message).toContain('vm.sandbox: false');
    }
  });

  it('runs steps that opted out, and says in the log what fence is missing', async () => {
    const ctx = new Recorder();
    const result = await noSandbox.run(fnStep(HELLO, { sandbox: false }), ctx);
    expect(result.outputs).toEqual({ hello: 'world' });
    expect(ctx.text).toContain('[conveyor] sandbox off for this step');
  });
});

describe('a worker whose bubblewrap does not work', () => {
  it('reports why and refuses sandboxed steps instead of running them unfenced', async () => {
    const caps = await noBwrap.capabilities();
    expect(caps.sandboxUnavailable).toContain('/nonexistent/bwrap');
    const result = await noBwrap.run(fnStep(HELLO), new Recorder());
    expect(result.error).toMatchObject({ code: 'sandbox_unavailable', retriable: false });
    expect(result.error?.message).toContain('/nonexistent/bwrap');
    // Its pool, made for sandboxed VMs, never starts one.
    expect(noBwrap.poolStats()).toBeNull();
  });

  it('still runs steps with vm.sandbox: false', async () => {
    const result = await noBwrap.run(fnStep(HELLO, { sandbox: false }), new Recorder());
    expect(result.outputs).toEqual({ hello: 'world' });
  });
});

describe('a host without writable cgroups (rlimits only)', () => {
  it('says so in the step log', async () => {
    const ctx = new Recorder();
    await noCgroups.run(fnStep(HELLO), ctx);
    expect(ctx.text).toMatch(
      /\[conveyor\] cgroups unavailable \(switched off by the worker\): limits fall back to rlimits/,
    );
  });

  it('still fails heap and buffer bombs with a memory-limit reason', async () => {
    const heap = 'export default async () => { const a = []; for (;;) a.push(new Array(1e5).fill(1.5)) }';
    const buffers = 'export default async () => { const a = []; for (;;) a.push(Buffer.alloc(4 << 20, 1)) }';
    for (const source of [heap, buffers]) {
      const result = await noCgroups.run(fnStep(source, { memoryMb: 64 }), new Recorder());
      expect(result.error?.code).toBe('memory_limit');
    }
  });

  it('still stops an endless loop at the CPU limit', async () => {
    const result = await noCgroups.run(
      fnStep('export default async () => { for (;;) {} }', { cpuSeconds: 1 }),
      new Recorder(),
    );
    expect(result.error?.code).toBe('cpu_limit');
  });

  it.runIf(isRoot)('still contains a fork bomb (RLIMIT_NPROC on the VM’s own uid)', async () => {
    const ctx = new Recorder();
    const marker = `nproc-bomb-${process.pid}`;
    const running = noCgroups.run(
      cmdStep(`bomb() { bomb | bomb & }; bomb; exec sleep 30 # ${marker}`, { pids: 32 }),
      ctx,
    );
    await ctx.waitFor(/Cannot fork|fork: /);
    expect(pidsWith(marker).length).toBeLessThanOrEqual(32);
    ctx.abort(new StepCancelledError());
    await running;
    expect(pidsWith(marker)).toEqual([]);
  });

  it.runIf(isRoot)('kills what an unsandboxed command leaves behind, by its uid', async () => {
    const ctx = new Recorder();
    const marker = `escapee-${process.pid}`;
    // setsid leaves the process group; without a cgroup only the VM's own uid still finds it.
    const result = await noCgroups.run(
      cmdStep(`setsid sh -c 'exec sleep 300 # ${marker}' & echo left`, { sandbox: false }),
      ctx,
    );
    expect(result.exitCode).toBe(0);
    expect(pidsWith(marker)).toEqual([]);
  });
});
