import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { marker, processesWithEnv } from '../support/processes.ts';
import { killAllWorkers, spawnWorker as spawnOne } from '../support/worker-process.ts';

let engine: TestEngine;

/** A worker with a 5 s shutdown grace. */
const spawnWorker = () => spawnOne(engine.prefix, { WORKER_SHUTDOWN_GRACE_MS: '5000' });

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
});
afterAll(async () => {
  await killAllWorkers();
  await engine.close();
});

describe('SIGTERM during a long step', () => {
  it('stops the step after the grace, hands it back at once, and another worker runs it as attempt 2', async () => {
    const mark = marker();
    const run = await engine.submit({
      name: 'shutdown',
      steps: {
        long: {
          env: { MARK: mark },
          run: 'echo "attempt $CONVEYOR_RUN_ATTEMPT"; [ "$CONVEYOR_RUN_ATTEMPT" = 1 ] && sleep 40; echo finished',
        },
      },
    });
    const first = spawnWorker();
    await engine.waitForEvent(run.id, (e) => e.type === 'step.log' && e.data.step === 'long');
    const exited = new Promise<number>((resolve) => first.once('exit', () => resolve(Date.now())));
    const sentAt = Date.now();
    first.kill('SIGTERM');
    const exitedAt = await exited;
    // The grace is 5 s; the worker does not wait out the 40 s step (nor the lock, for the re-run).
    expect(exitedAt - sentAt).toBeLessThan(9000);
    expect(processesWithEnv('MARK', mark)).toEqual([]);
    const handedBack = await engine.waitForEvent(run.id, (e) => e.type === 'step.retrying');
    expect(handedBack.data).toMatchObject({ attempt: 1, nextAttempt: 2, reason: 'shutdown' });

    spawnWorker();
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.long).toMatchObject({ status: 'succeeded', attempts: 2 });
    const log = await engine.request('GET', `/v1/runs/${run.id}/steps/long/logs`);
    expect(log.body).toBe('attempt 2\nfinished\n');
    const first1 = await engine.request('GET', `/v1/runs/${run.id}/steps/long/logs?attempt=1`);
    expect(first1.body).toMatch(/^attempt 1\n/);
  });
});
