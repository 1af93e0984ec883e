/**
 * Review of issue 7 (crashes): each local attempt gets a private folder under the system temp
 * folder (`conveyor-step-*`) holding `$CONVEYOR_OUTPUT` and `$CONVEYOR_EVENTS`, removed in a
 * `finally`. A worker killed mid-step never runs it, and nothing sweeps those folders (the
 * start-up sweep knows only workspaces), so every crash leaves one behind for good, with what
 * the step wrote to its outputs in clear (outputs are masked only when the worker reads them).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { killAllWorkers, killWorker, spawnWorker as spawnOne } from '../support/worker-process.ts';

let engine: TestEngine;
let dir: string;

const spawnWorker = () =>
  spawnOne(engine.prefix, {
    WORKER_LOCK_MS: '2000',
    WORKER_STALLED_INTERVAL_MS: '1000',
    WORKER_WORKSPACE_DIR: join(dir, 'ws'),
  });

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
  dir = mkdtempSync(join(tmpdir(), 'conveyor-review-leftovers-'));
});
afterEach(killAllWorkers);
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a worker SIGKILLed mid-step', () => {
  it("leaves no attempt folder (with the step's unmasked outputs) behind once the run has ended", async () => {
    const run = await engine.submit({
      name: 'leftovers',
      steps: {
        s: {
          run: [
            'echo "outputs at $CONVEYOR_OUTPUT"',
            'echo "token=not-yet-masked" >> "$CONVEYOR_OUTPUT"',
            '[ "$CONVEYOR_RUN_ATTEMPT" = 1 ] && sleep 300',
            'true',
          ].join('\n'),
        },
      },
    });
    const first = spawnWorker();
    await engine.waitForEvent(run.id, (e) => e.type === 'step.log' && e.data.step === 's');
    await killWorker(first);
    spawnWorker();
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.s).toMatchObject({ status: 'succeeded', attempts: 2 });
    const log = (await engine.request('GET', `/v1/runs/${run.id}/steps/s/logs?attempt=1`)).body as string;
    const path = /outputs at (\S+)/.exec(log)?.[1];
    expect(path).toBeDefined();
    // Removed when the run's end reaches the workers (a pub/sub message just after its last event).
    for (let i = 0; i < 100 && existsSync(dirname(path!)); i++) await new Promise((r) => setTimeout(r, 50));
    const leftover = existsSync(dirname(path!));
    rmSync(dirname(path!), { recursive: true, force: true });
    expect(leftover).toBe(false);
  });
});
