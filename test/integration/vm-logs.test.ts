/**
 * Log volume: a guest printing 100 MB streams through the worker without its memory growing,
 * and past the executor's cap the output is cut and the step stopped. The streaming test runs
 * first in its own file so the process's peak RSS is a clean baseline.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { VmExecutor } from '../../src/workers/vm/index.ts';
import { cmdStep, fnStep, Recorder } from './vm-harness.ts';

const MB = 1024 * 1024;
const PRINT_100MB = `export default async () => {
  const chunk = 'x'.repeat(1024 * 1024);
  for (let i = 0; i < 100; i++) process.stdout.write(chunk);
  return { printed: 100 };
}`;

const roomy = new VmExecutor({ poolSize: 0, maxLogBytes: 200 * MB });
const tight = new VmExecutor({ poolSize: 0, maxLogBytes: 1 * MB });
afterAll(() => Promise.all([roomy.close(), tight.close()]));

describe('log volume', () => {
  it('streams 100 MB of output while the worker memory stays flat', async () => {
    // Warm the code paths first so the baseline already includes them.
    await roomy.run(fnStep("export default async () => { console.log('warm') }"), new Recorder());
    const peakBefore = process.resourceUsage().maxRSS * 1024;
    const ctx = new Recorder(0);
    const result = await roomy.run(fnStep(PRINT_100MB, { memoryMb: 256 }), ctx);
    const peakAfter = process.resourceUsage().maxRSS * 1024;
    expect(result.error).toBeUndefined();
    expect(result.outputs).toEqual({ printed: 100 });
    expect(ctx.bytes).toBe(100 * MB);
    // Buffering it would cost at least 100 MB; streaming costs a few chunks.
    expect(peakAfter - peakBefore).toBeLessThan(40 * MB);
  });

  it('cuts a function at the cap and stops it', async () => {
    const ctx = new Recorder(2 * MB);
    const result = await tight.run(fnStep(PRINT_100MB, { memoryMb: 256 }), ctx);
    expect(result.error).toMatchObject({ code: 'output_limit', retriable: false });
    expect(ctx.bytes).toBeLessThan(MB + 1024);
    expect(ctx.text).toContain('[conveyor] log output passed the 1048576-byte cap');
  });

  it('cuts a sandboxed command at the cap and stops it', async () => {
    const ctx = new Recorder();
    const result = await tight.run(cmdStep('yes "a line of output that goes on and on"'), ctx);
    expect(result.error?.code).toBe('output_limit');
    expect(ctx.bytes).toBeLessThan(MB + 1024);
  });
});
