/**
 * The lean spawner (src/workers/local/spawner.ts): the small process that forks local steps.
 * Killed mid-step, it takes its steps' processes with it, those steps fail with a clear reason,
 * and the next step runs on a new one; a SIGKILLed worker takes its spawner along; the spawner
 * never holds the worker's credentials; a step flooding stdout still meets the log cap.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { eventually, isAlive, marker, processesWithEnv } from '../support/processes.ts';
import { killAllWorkers, killWorker, spawnWorker } from '../support/worker-process.ts';

let engine: TestEngine;
let executor: LocalExecutor;
let apiOnly: TestEngine;

beforeAll(async () => {
  executor = new LocalExecutor({ killGraceMs: 1000 });
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    executors: [executor],
    concurrency: 4,
    maxLogBytes: 1024 * 1024,
  });
  apiOnly = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
});
afterEach(killAllWorkers);
afterAll(async () => {
  await engine.close();
  await apiOnly.close();
});

/** Live pids whose parent is `ppid` and whose command line mentions `word`. */
function children(ppid: number, word: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (!status.includes(`\nPPid:\t${ppid}\n`) || /\nState:\t[ZX]/.test(status)) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(word)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('a spawner killed mid-step', () => {
  it('fails only the steps it ran, with a clear reason, and the next step runs on a new spawner', async () => {
    const mark = marker();
    const run = await engine.submit({
      name: 'spawner-killed',
      steps: {
        long: { env: { MARK: mark }, run: 'echo started; setsid sleep 300 & sleep 300' },
        flaky: {
          env: { MARK: mark },
          run: 'echo "attempt $CONVEYOR_RUN_ATTEMPT"; [ "$CONVEYOR_RUN_ATTEMPT" = 1 ] && sleep 300; true',
          retries: { attempts: 2, delay: 10 },
        },
        after: { needs: ['long', 'flaky'], if: '${{ always() }}', run: 'echo after' },
      },
    });
    for (const step of ['long', 'flaky'])
      await engine.waitForEvent(run.id, (e) => e.type === 'step.log' && e.data.step === step);
    const first = executor.spawnerPid()!;
    expect(first).toBeGreaterThan(0);
    expect(processesWithEnv('MARK', mark).length).toBeGreaterThan(0);
    process.kill(first, 'SIGKILL');

    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.long).toMatchObject({
      status: 'failed',
      error: {
        code: 'spawner_lost',
        message: `the local step spawner (pid ${first}) killed by SIGKILL while the step ran`,
      },
    });
    // Retriable: a step with attempts left runs again, on the new spawner.
    expect(done.steps.flaky).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(done.steps.after!.status).toBe('succeeded');
    expect((await engine.request('GET', `/v1/runs/${run.id}/steps/after/logs`)).body).toBe('after\n');
    expect(executor.spawnerPid()).not.toBe(first);
    // The processes of the lost steps, the setsid one included, died with it.
    expect(await eventually(() => processesWithEnv('MARK', mark).length === 0, 5000)).toBe(true);
  });
});

describe('a step flooding stdout through the spawner', () => {
  it('meets the log cap and the worker goes on', async () => {
    const run = await engine.submit({
      name: 'flood',
      steps: {
        flood: { run: 'yes conveyor | head -c 50000000', timeout: '60s' },
        next: { needs: ['flood'], if: '${{ always() }}', run: 'echo next' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.flood).toMatchObject({ status: 'failed', error: { code: 'output_limit' } });
    expect(done.steps.next!.status).toBe('succeeded');
  });
});

describe('the spawner of a worker process', () => {
  it('holds none of its credentials, and dies with the worker, its steps too', async () => {
    const key = randomBytes(32).toString('base64');
    const mark = marker();
    // With a credential in its environment the entry point becomes a supervisor of the worker proper.
    const supervisor = spawnWorker(apiOnly.prefix, { CONVEYOR_SECRET_KEY: key });
    const run = await apiOnly.submit({
      name: 'worker-killed',
      steps: { s: { env: { MARK: mark }, run: 'echo started; sleep 300' } },
    });
    await apiOnly.waitForEvent(run.id, (e) => e.type === 'step.log');
    const [worker] = children(supervisor.pid!, 'conveyor.mjs');
    const spawners = children(worker!, 'spawner-process.mjs');
    expect(spawners).toHaveLength(1);
    const environ = readFileSync(`/proc/${spawners[0]}/environ`, 'utf8');
    expect(environ).not.toContain(key);
    expect(environ).not.toContain('REDIS_URL');
    expect(processesWithEnv('MARK', mark).length).toBeGreaterThan(0);

    process.kill(worker!, 'SIGKILL');
    expect(await eventually(() => !isAlive(spawners[0]!), 5000)).toBe(true);
    expect(await eventually(() => processesWithEnv('MARK', mark).length === 0, 5000)).toBe(true);
    await killWorker(supervisor);
  });
});
