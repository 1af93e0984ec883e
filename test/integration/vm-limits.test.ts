/**
 * Limits, for real: memory bombs, endless loops, wall timeouts and cancels, with other steps
 * running alongside on the same executor.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { StepCancelledError, StepTimeoutError } from '../../src/errors.ts';
import { VmExecutor } from '../../src/workers/vm/index.ts';
import { cmdStep, fnStep, pidsWith, Recorder } from './vm-harness.ts';

const executor = new VmExecutor({ poolSize: 0 });
afterAll(() => executor.close());

const HEAP_BOMB = `export default async () => {
  const hoard = [];
  for (;;) hoard.push(new Array(100_000).fill(Math.random()));
}`;

const BUFFER_BOMB = `export default async () => {
  const hoard = [];
  // Buffers live outside the V8 heap: only the cgroup (or RLIMIT_DATA) stops these.
  for (;;) hoard.push(Buffer.alloc(4 * 1024 * 1024, 1));
}`;

const WELL_BEHAVED = `export default async (ctx) => {
  let sum = 0;
  for (let i = 0; i < 1e6; i++) sum += i;
  return { sum, n: ctx.inputs.n };
}`;

describe('memory', () => {
  it('fails a heap bomb with a memory-limit reason while other steps run to success', async () => {
    const others = [1, 2, 3].map((n) =>
      executor.run(fnStep(WELL_BEHAVED, {}, { context: { inputs: { n } } }), new Recorder()),
    );
    const bomb = await executor.run(fnStep(HEAP_BOMB, { memoryMb: 64 }), new Recorder());
    expect(bomb.error).toMatchObject({ code: 'memory_limit', retriable: false });
    expect(bomb.error?.message).toMatch(/memory limit of 64 MB/);
    const results = await Promise.all(others);
    expect(results.map((r) => r.outputs)).toEqual([1, 2, 3].map((n) => ({ sum: 499999500000, n })));
  });

  it('fails a bomb of off-heap buffers with a memory-limit reason', async () => {
    const result = await executor.run(fnStep(BUFFER_BOMB, { memoryMb: 64 }), new Recorder());
    expect(result.error?.code).toBe('memory_limit');
    expect(result.error?.message).toMatch(/memory limit of 64 MB/);
  });

  it('fails a memory-hungry sandboxed command with a memory-limit reason', async () => {
    const hog = "node -e 'const a = []; for (;;) a.push(Buffer.alloc(1e6, 1))'";
    const result = await executor.run(cmdStep(hog, { memoryMb: 64 }), new Recorder());
    expect(result.exitCode).not.toBe(0);
    expect(result.error?.code).toBe('memory_limit');
  });

  it('keeps a command that survives a killed child successful, and says why in the log', async () => {
    const ctx = new Recorder();
    const hog = "node -e 'const a = []; for (;;) a.push(Buffer.alloc(1e6, 1))' || echo carried on";
    const result = await executor.run(cmdStep(hog, { memoryMb: 64 }), ctx);
    expect(result).toMatchObject({ exitCode: 0, outputs: {} });
    expect(result.error).toBeUndefined();
    expect(ctx.text).toContain('carried on');
    expect(ctx.text).toMatch(/\[conveyor\] memory limit of 64 MB exceeded .*still exited 0/);
  });
});

describe('time', () => {
  it('stops an endless loop at the CPU limit', async () => {
    const started = performance.now();
    const result = await executor.run(
      fnStep('export default async () => { for (;;) {} }', { cpuSeconds: 1 }),
      new Recorder(),
    );
    expect(result.error).toMatchObject({ code: 'cpu_limit', retriable: false });
    expect(result.error?.message).toContain('CPU time limit of 1 s');
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('kills an endless loop within a second of the wall timeout', async () => {
    const ctx = new Recorder();
    const running = executor.run(
      fnStep("export default async (ctx) => { ctx.log('looping', process.cwd()); for (;;) {} }"),
      ctx,
    );
    const [, dir] = (await ctx.waitFor(/looping (\S+)/)) as [string, string];
    const aborted = performance.now();
    ctx.abort(new StepTimeoutError(500));
    const result = await running;
    expect(performance.now() - aborted).toBeLessThan(1000);
    expect(result.error?.code).toBe('timeout');
    expect(pidsWith(dir)).toEqual([]);
  });

  it('cancels a waiting function within a second and lets it see ctx.signal', async () => {
    const ctx = new Recorder();
    const running = executor.run(
      fnStep(`export default async (ctx) => {
        ctx.signal.addEventListener('abort', () => ctx.log('saw abort:', ctx.signal.reason.message));
        ctx.log('waiting', process.cwd());
        await new Promise(() => {});
      }`),
      ctx,
    );
    const [, dir] = (await ctx.waitFor(/waiting (\S+)/)) as [string, string];
    const aborted = performance.now();
    ctx.abort(new StepCancelledError());
    const result = await running;
    expect(performance.now() - aborted).toBeLessThan(1000);
    expect(result.error).toMatchObject({ code: 'cancelled' });
    expect(ctx.text).toContain('saw abort: step aborted: step cancelled');
    expect(pidsWith(dir)).toEqual([]);
  });

  it('cancels a sandboxed command and everything it started within a second', async () => {
    const ctx = new Recorder();
    const marker = `cancel-marker-${process.pid}`;
    const running = executor.run(cmdStep(`sleep 300 & sleep 300 & echo started; wait # ${marker}`), ctx);
    await ctx.waitFor(/started/);
    expect(pidsWith(marker).length).toBeGreaterThan(0);
    const aborted = performance.now();
    ctx.abort(new StepCancelledError());
    const result = await running;
    expect(performance.now() - aborted).toBeLessThan(1000);
    expect(result.error?.code).toBe('cancelled');
    expect(pidsWith(marker)).toEqual([]);
    expect(pidsWith('sleep 300').filter((pid) => pidsWith(marker).includes(pid))).toEqual([]);
  });

  it('returns at once for a step aborted before it started', async () => {
    const ctx = new Recorder();
    ctx.abort(new StepCancelledError());
    const result = await executor.run(fnStep('export default async () => ({})'), ctx);
    expect(result.error?.code).toBe('cancelled');
  });
});
