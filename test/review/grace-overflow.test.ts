/**
 * Review of issue 7 (durations within range; SIGTERM grace): `WORKER_SHUTDOWN_GRACE_MS` has a
 * minimum but no maximum, and the grace is one `setTimeout`, which Node fires after 1 ms for any
 * delay over 2^31-1 ms. A grace of 2^31 ms (about 25 days, "let deploys finish") therefore
 * hands every running step back at once on SIGTERM.
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
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-review-grace-'));
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
});
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a shutdown grace longer than 2^31 ms', () => {
  it('lets a running step finish instead of handing it back at once', async () => {
    const worker = await startWorker({
      redisUrl: redisUrl(),
      prefix: engine.prefix,
      logger: pino({ level: 'silent' }),
      shutdownGraceMs: 2 ** 31,
      executors: [new LocalExecutor({ workspaces: new Workspaces({ baseDir: join(dir, 'ws') }) })],
    });
    const run = await engine.submit({
      name: 'grace',
      steps: { s: { run: 'echo "::progress::10"; sleep 2; echo finished' } },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.progress');
    await worker.close();
    const doc = (await engine.request('GET', `/v1/runs/${run.id}`)).body;
    expect(doc.steps.s).toMatchObject({ status: 'succeeded', attempts: 1 });
    if (doc.status === 'running') await engine.request('POST', `/v1/runs/${run.id}/cancel`);
  });
});
