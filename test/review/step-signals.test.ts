/**
 * Review of issue 7 (containment): the namespace's init starts the step's command as a
 * background job of a non-interactive `sh` (`"$@" &`), and POSIX shells start such jobs with
 * SIGINT and SIGQUIT ignored. Every process of a local step then inherits them ignored, and a
 * shell cannot trap a signal that was ignored on entry: `timeout -s INT`, `kill -INT`, a
 * cleanup `trap … INT` or Python's KeyboardInterrupt stop working inside steps. The same
 * command outside Conveyor (or in the process-group fallback) behaves normally.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestEngine } from '../support/engine.ts';
import { type LocalEngine, startLocalEngine } from '../support/local-engine.ts';

let engine: TestEngine;
let local: LocalEngine;

beforeAll(async () => {
  local = await startLocalEngine(import.meta.url);
  ({ engine } = local);
});
afterAll(async () => {
  await local.close();
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
