/**
 * A 10,000-step chain (issue 8) runs to its end: submitted as one flow 10,000 deep, every step
 * run once, in order. Steps are no-ops (an executor that returns at once), so the test measures
 * the engine's path, not 10,000 shell starts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor, StepExecution, StepResult } from '../../src/workers/executor.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

/** Registered as `local`: records the order steps started in and succeeds at once. */
class NoopExecutor implements Executor {
  readonly name = 'local';
  readonly started: string[] = [];
  async run(step: StepExecution): Promise<StepResult> {
    this.started.push(step.stepId);
    return { exitCode: 0, outputs: {}, events: [] };
  }
  async close(): Promise<void> {}
}

const noop = new NoopExecutor();
let engine: TestEngine;
beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { executors: [noop], concurrency: 50 });
});
afterAll(async () => engine.close());

describe('a 10,000-step chain', () => {
  it('runs every step once, in order, to success', async () => {
    const n = 10_000;
    const steps = Object.fromEntries(
      Array.from({ length: n }, (_, i) => [
        `s${i}`,
        i ? { needs: `s${i - 1}`, run: 'true' } : { run: 'true' },
      ]),
    );
    const run = await engine.submit({ name: 'long-chain', steps });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(noop.started).toEqual(Array.from({ length: n }, (_, i) => `s${i}`));
  }, 120_000);
});
