/**
 * Steps no live worker serves: flagged in the dry run and the run document from the launch, and
 * given a `step.waiting` event by the periodic check when they become queued later; they run as
 * soon as a worker serving them starts.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor, Workspaces } from '../../src/workers/local/index.ts';
import { startWorker } from '../../src/workers/worker.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
// Workspaces of this file's own: a worker's start-up sweep would remove other files' live ones.
const dir = mkdtempSync(join(tmpdir(), 'conveyor-waiting-'));
const local = () => new LocalExecutor({ killGraceMs: 1000, workspaces: new Workspaces({ baseDir: dir }) });

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    executors: [local()],
    waitingCheckMs: 300,
  });
});
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

const reason = 'no live worker serves executor local with tags [nobody]';

describe('steps no live worker serves', () => {
  it('are flagged at launch and when they become queued, and run once a worker serves them', async () => {
    const workflow = {
      name: 'unserved',
      steps: { a: { run: 'true' }, b: { needs: ['a'], runsOn: ['nobody'], run: 'echo served' } },
    };
    const plan = await engine.request('POST', '/v1/runs?dryRun=true', { workflow });
    expect(plan.body.steps.map((s: { waiting?: string }) => s.waiting)).toEqual([undefined, reason]);

    const run = await engine.submit(workflow);
    expect(run.steps.b).toMatchObject({ status: 'pending', waiting: reason });
    expect(run.steps.a!.waiting).toBeUndefined();
    // b is queued only once a succeeds: the periodic check, not the launch, announces it.
    const queuedAt = Date.parse(
      (await engine.waitForEvent(run.id, (e) => e.type === 'step.succeeded' && e.data.step === 'a')).data
        .at as string,
    );
    const waiting = await engine.waitForEvent(run.id, (e) => e.type === 'step.waiting');
    expect(waiting.data).toMatchObject({ step: 'b', reason });
    expect(Date.parse(waiting.data.at as string) - queuedAt).toBeLessThan(5000);
    expect((await engine.request('GET', `/v1/runs/${run.id}`)).body.steps.b).toMatchObject({
      status: 'queued',
      waiting: reason,
    });

    const served = await startWorker({
      redisUrl: engine.redisUrl,
      prefix: engine.prefix,
      executors: [local()],
      tags: ['nobody'],
      tagsOnly: true,
      logger: pino({ level: 'silent' }),
    });
    try {
      const { run: done, events } = await engine.waitForRun(run.id);
      expect(done.status).toBe('succeeded');
      expect(done.steps.b!.waiting).toBeUndefined();
      expect(events.find((e) => e.type === 'step.started' && e.data.step === 'b')!.data.worker).toBe(
        served.id,
      );
      expect(events.filter((e) => e.type === 'step.waiting')).toHaveLength(1);
    } finally {
      await served.close();
    }
  });
});
