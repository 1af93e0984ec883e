/**
 * Review of issue 7 (containment): the namespace's init starts the step's command as a
 * background job of a non-interactive `sh` (`"$@" &`), and POSIX shells start such jobs with
 * SIGINT and SIGQUIT ignored. Every process of a local step then inherits them ignored, and a
 * shell cannot trap a signal that was ignored on entry: `timeout -s INT`, `kill -INT`, a
 * cleanup `trap … INT` or Python's KeyboardInterrupt stop working inside steps. The same
 * command outside Conveyor (or in the process-group fallback) behaves normally.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor, Workspaces } from '../../src/workers/local/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-review-signals-'));
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    executors: [
      new LocalExecutor({ killGraceMs: 1000, workspaces: new Workspaces({ baseDir: join(dir, 'ws') }) }),
    ],
  });
});
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

const logOf = async (runId: string, step: string) =>
  (await engine.request('GET', `/v1/runs/${runId}/steps/${step}/logs`)).body as string;

describe('signals inside a local step', () => {
  it('starts step processes with no signal ignored (SigIgn 0, as in a plain shell)', async () => {
    const run = await engine.submit({
      name: 'sigign',
      steps: { s: { run: 'grep SigIgn /proc/self/status' } },
    });
    await engine.waitForRun(run.id);
    expect(await logOf(run.id, 's')).toMatch(/SigIgn:\s+0+\s*$/);
  });

  it('lets SIGINT end a process, and a trap on INT run', async () => {
    const run = await engine.submit({
      name: 'sigint',
      steps: {
        s: {
          timeout: '20s',
          run: [
            `sh -c 'kill -INT $$; echo survived-int'`,
            `sh -c 'trap "echo trapped-int; exit 0" INT; kill -INT $$; sleep 3; echo not-trapped'`,
          ].join('\n'),
        },
      },
    });
    await engine.waitForRun(run.id);
    const log = await logOf(run.id, 's');
    expect(log).not.toContain('survived-int');
    expect(log).toContain('trapped-int');
  });
});
