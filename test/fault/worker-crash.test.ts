import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/store/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { eventually, marker, processesWithEnv } from '../support/processes.ts';
import { killAllWorkers, killWorker, spawnWorker as spawnOne } from '../support/worker-process.ts';

let engine: TestEngine;
let dir: string;

/** A worker with short locks, for fast recovery. */
const spawnWorker = () =>
  spawnOne(engine.prefix, { WORKER_LOCK_MS: '2000', WORKER_STALLED_INTERVAL_MS: '1000' });

const started = (step: string, attempt: number) => (e: RunEvent) =>
  e.type === 'step.started' && e.data.step === step && e.data.attempt === attempt;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
  dir = mkdtempSync(join(tmpdir(), 'conveyor-crash-'));
});
afterEach(killAllWorkers);
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a worker killed with SIGKILL mid-step', () => {
  it('takes the step process tree with it; the re-run is attempt 2 everywhere, with its own log', async () => {
    const order = join(dir, 'order');
    const mark = marker();
    const run = await engine.submit({
      name: 'crash',
      steps: {
        a: { run: `echo a >> ${order}` },
        b: {
          needs: ['a'],
          env: { MARK: mark },
          run: [
            `echo "b attempt $CONVEYOR_RUN_ATTEMPT" >> ${order}`,
            'echo "this is attempt $CONVEYOR_RUN_ATTEMPT"',
            // A background process in its own session: it must die with the worker too.
            'setsid sleep 300 &',
            '[ "$CONVEYOR_RUN_ATTEMPT" = 1 ] && sleep 300',
            'true',
          ].join('\n'),
        },
        c: { needs: ['b'], run: `echo c >> ${order}` },
        d: { needs: ['a'], run: `echo d >> ${order}` },
      },
    });
    const first = spawnWorker();
    await engine.waitForEvent(run.id, (e) => e.type === 'step.log' && e.data.step === 'b');
    expect(processesWithEnv('MARK', mark).length).toBeGreaterThan(0);
    await killWorker(first);
    // Nothing the step started outlives its worker: within 5 s every process is gone.
    expect(await eventually(() => processesWithEnv('MARK', mark).length === 0, 5000)).toBe(true);

    spawnWorker();
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(Object.values(done.steps).map((s) => s.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
    expect(done.steps.b!.attempts).toBe(2);
    expect(done.steps.a!.attempts).toBe(1);
    const lines = readFileSync(order, 'utf8').trim().split('\n').sort();
    expect(lines).toEqual(['a', 'b attempt 1', 'b attempt 2', 'c', 'd']);
    expect(
      events.filter((e) => e.type === 'step.started' && e.data.step === 'b').map((e) => e.data.attempt),
    ).toEqual([1, 2]);
    const retrying = events.filter((e) => e.type === 'step.retrying' && e.data.step === 'b');
    expect(retrying).toHaveLength(1);
    expect(retrying[0]!.data).toMatchObject({ attempt: 1, nextAttempt: 2, reason: 'interrupted' });
    for (const step of ['a', 'b', 'c', 'd']) {
      expect(events.filter((e) => e.type === 'step.succeeded' && e.data.step === step)).toHaveLength(1);
    }
    expect(events.at(-1)!.type).toBe('run.succeeded');

    const log = async (attempt?: number) =>
      (await engine.request('GET', `/v1/runs/${run.id}/steps/b/logs${attempt ? `?attempt=${attempt}` : ''}`))
        .body;
    expect(await log(1)).toBe('this is attempt 1\n');
    expect(await log(2)).toBe('this is attempt 2\n');
    expect(await log()).toBe('this is attempt 2\n');
    expect((await engine.request('GET', `/v1/runs/${run.id}/steps/b/logs?attempt=3`)).status).toBe(404);
    expect(processesWithEnv('MARK', mark)).toEqual([]);
  });

  it('fails a step whose worker dies three times, skips its dependents, and ends the run', async () => {
    const mark = marker();
    const run = await engine.submit({
      name: 'poison',
      steps: {
        a: { env: { MARK: mark }, run: 'echo "attempt $CONVEYOR_RUN_ATTEMPT"; sleep 300' },
        b: { needs: ['a'], run: 'true' },
        c: { needs: ['a'], run: 'true' },
        d: { needs: ['b', 'c'], run: 'true' },
        after: { needs: ['a'], if: '${{ always() }}', run: 'echo "a was ${{ steps.a.status }}"' },
        other: { run: 'echo independent' },
      },
    });
    for (let attempt = 1; attempt <= 3; attempt++) {
      const worker = spawnWorker();
      await engine.waitForEvent(run.id, started('a', attempt));
      // The first worker also runs the independent step: let it finish, or it is killed too.
      if (attempt === 1)
        await engine.waitForEvent(run.id, (e) => e.type === 'step.succeeded' && e.data.step === 'other');
      await killWorker(worker);
    }
    spawnWorker();
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('failed');
    expect(done.steps.a!.status).toBe('failed');
    expect(done.steps.a!.error).toEqual({
      code: 'worker_lost',
      message: 'its worker died 3 times while running it',
    });
    expect(done.steps.a!.attempts).toBe(3);
    expect(done.steps.b!.status).toBe('skipped');
    expect(done.steps.c!.status).toBe('skipped');
    expect(done.steps.d!.status).toBe('skipped');
    expect(done.steps.after!.status).toBe('succeeded');
    expect(done.steps.other!.status).toBe('succeeded');
    expect(events.filter((e) => e.type === 'step.retrying' && e.data.step === 'a')).toHaveLength(2);
    expect((await engine.request('GET', `/v1/runs/${run.id}/steps/after/logs`)).body).toBe('a was failed\n');
    expect(processesWithEnv('MARK', mark)).toEqual([]);
  });
});
