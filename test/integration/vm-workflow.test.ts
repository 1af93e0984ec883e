/**
 * The VM executor inside the engine: a workflow mixing a local step, a VM function and a
 * sandboxed command runs green, with outputs flowing between executors, logs, progress and
 * emitted events; a memory bomb fails its step and nothing else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { VmExecutor } from '../../src/workers/vm/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    concurrency: 4,
    executors: [new LocalExecutor({ killGraceMs: 1000 }), new VmExecutor({ poolSize: 1 })],
  });
});
afterAll(() => engine.close());

describe('a workflow across executors', () => {
  it('runs local, VM function and sandboxed command steps, passing outputs along', async () => {
    const run = await engine.submit(
      {
        name: 'vm-mix',
        inputs: { ref: { type: 'string', default: 'main' } },
        steps: {
          build: { run: 'echo "artifact=app-${{ inputs.ref }}.tgz" >> "$CONVEYOR_OUTPUT"' },
          digest: {
            needs: ['build'],
            vm: { memoryMb: 128, timeout: '20s', network: false },
            function: `export default async (ctx: { steps: any; log: (...a: unknown[]) => void; progress: (n: number) => void; emit: (t: string, p: unknown) => void }) => {
              ctx.log('digesting', ctx.steps.build.outputs.artifact);
              ctx.progress(50);
              ctx.emit('artifact.digested', { name: ctx.steps.build.outputs.artifact });
              return { name: ctx.steps.build.outputs.artifact.toUpperCase() };
            }`,
          },
          package: {
            needs: ['digest'],
            vm: { memoryMb: 64 },
            run: 'echo "packaged ${{ steps.digest.outputs.name }}"; echo "size=42" >> "$CONVEYOR_OUTPUT"',
          },
        },
      },
      { ref: 'v1' },
    );
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(done.steps.digest).toMatchObject({
      status: 'succeeded',
      executor: 'vm',
      outputs: { name: 'APP-V1.TGZ' },
    });
    expect(done.steps.package).toMatchObject({
      status: 'succeeded',
      executor: 'vm',
      outputs: { size: '42' },
    });
    expect(events.some((e) => e.type === 'step.progress' && e.data.step === 'digest')).toBe(true);
    const logs = await engine.request('GET', `/v1/runs/${run.id}/steps/package/logs`);
    expect(logs.body).toContain('packaged APP-V1.TGZ');
  });

  it('fails a memory bomb step with a memory-limit reason and lets its sibling succeed', async () => {
    const run = await engine.submit({
      name: 'vm-bomb',
      steps: {
        bomb: {
          vm: { memoryMb: 64 },
          function: 'export default async () => { const a = []; for (;;) a.push(new Array(1e5).fill(1.5)) }',
        },
        fine: { function: 'export default async () => ({ ok: true })' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('failed');
    expect(done.steps.fine).toMatchObject({ status: 'succeeded', outputs: { ok: true } });
    expect(done.steps.bomb?.status).toBe('failed');
    expect(JSON.stringify(done.steps.bomb)).toContain('memory limit of 64 MB');
  });
});
