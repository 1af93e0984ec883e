/**
 * Review of issue 7 (workspaces): a worker's start-up sweep removes every `run_*` directory
 * whose run its own prefix has no record of. Two installations (or two test files) on one host
 * with different `CONVEYOR_PREFIX` share the default `<temp>/conveyor-workspaces`, so a worker of
 * one deletes the live workspaces of the other's running steps.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor, Workspaces } from '../../src/workers/local/index.ts';
import { startWorker } from '../../src/workers/worker.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
let dir: string;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-review-sweep-'));
  base = join(dir, 'workspaces');
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    executors: [new LocalExecutor({ killGraceMs: 1000, workspaces: new Workspaces({ baseDir: base }) })],
  });
});
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('workspace sweep across prefixes', () => {
  it("a worker of another prefix starting on the same host leaves a running step's workspace alone", async () => {
    const go = join(dir, 'go');
    const run = await engine.submit({
      name: 'sweep',
      steps: {
        s: {
          timeout: '20s',
          run: [
            'echo kept > keep.txt',
            'echo "::progress::50"',
            `while [ ! -e ${go} ]; do sleep 0.1; done`,
            'cat keep.txt',
          ].join('\n'),
        },
      },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.progress' && e.data.step === 's');
    const workspace = join(base, run.id);
    expect(existsSync(join(workspace, 'keep.txt'))).toBe(true);

    // Another installation's worker (its own prefix) on the same host and workspace folder.
    const other = testPrefix(import.meta.url);
    const worker = await startWorker({
      redisUrl: redisUrl(),
      prefix: other,
      logger: pino({ level: 'silent' }),
      executors: [new LocalExecutor({ workspaces: new Workspaces({ baseDir: base }) })],
    });
    try {
      const survived = existsSync(join(workspace, 'keep.txt'));
      writeFileSync(go, '');
      const { run: done } = await engine.waitForRun(run.id);
      expect(survived).toBe(true);
      expect(done.steps.s).toMatchObject({ status: 'succeeded' });
    } finally {
      writeFileSync(go, '');
      await worker.close();
      await dropPrefix(redisUrl(), other);
    }
  });
});
