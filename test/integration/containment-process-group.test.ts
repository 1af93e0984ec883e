/**
 * The process-group fallback of local steps (containment.ts), forced here since this worker could
 * make a PID namespace: a step with nothing to restore or create is exec'd without the `sh` link,
 * and one with a relative `cwd` or a loader variable still gets them (the `cwd` is created and
 * entered, the variable restored); leftovers in the step's group die when its command exits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor, Workspaces } from '../../src/workers/local/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { marker, processesWithEnv } from '../support/processes.ts';

let engine: TestEngine;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-pgroup-'));
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    executors: [
      new LocalExecutor({
        killGraceMs: 1000,
        containment: 'process-group',
        workspaces: new Workspaces({ baseDir: join(dir, 'ws') }),
      }),
    ],
  });
});
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

const logOf = async (runId: string, step: string) =>
  (await engine.request('GET', `/v1/runs/${runId}/steps/${step}/logs`)).body as string;

describe('local steps in a process group', () => {
  it('runs a plain step, creates and enters a relative cwd, and restores loader variables', async () => {
    const run = await engine.submit({
      name: 'pgroup',
      steps: {
        plain: { run: 'echo "ok=yes" >> "$CONVEYOR_OUTPUT"; echo "restore=${CONVEYOR_RESTORE-unset}"' },
        sub: { cwd: 'a/b', run: 'pwd; echo "create=${CONVEYOR_CREATE_CWD-unset}"' },
        loader: { env: { LD_LIBRARY_PATH: '/nowhere' }, run: 'echo "ld=$LD_LIBRARY_PATH"' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.plain).toMatchObject({ status: 'succeeded', outputs: { ok: 'yes' } });
    expect(await logOf(run.id, 'plain')).toBe('restore=unset\n');
    expect(done.steps.sub!.status).toBe('succeeded');
    expect(await logOf(run.id, 'sub')).toBe(`${join(dir, 'ws', run.id, 'a/b')}\ncreate=unset\n`);
    expect(await logOf(run.id, 'loader')).toBe('ld=/nowhere\n');
  });

  it('kills what a step left in its group when its command exits, and times out a stubborn one', async () => {
    const mark = marker();
    const run = await engine.submit({
      name: 'pgroup-kill',
      steps: {
        leftover: { env: { MARK: mark }, run: 'sleep 300 & echo done', timeout: '5s' },
        stubborn: { env: { MARK: mark }, run: 'trap "" TERM; echo started; sleep 300', timeout: '1s' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.leftover).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(done.steps.stubborn).toMatchObject({ status: 'failed', error: { code: 'timeout' } });
    expect(processesWithEnv('MARK', mark)).toEqual([]);
  });
});
