/**
 * Review of issue 7 (a workspace per run, `WORKER_RUN_AS`): every run's steps run as the same
 * user, and each attempt's `$CONVEYOR_OUTPUT` lives in a `conveyor-step-*` folder of the system
 * temp folder, chowned to that user, so any step of any run can list them and read or rewrite
 * another run's outputs (unmasked, as written) while it runs.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestEngine } from '../support/engine.ts';
import { type LocalEngine, startLocalEngine } from '../support/local-engine.ts';
import { marker } from '../support/processes.ts';

let engine: TestEngine;
let dir: string;
let local: LocalEngine;

beforeAll(async () => {
  local = await startLocalEngine(import.meta.url, { runAs: 'nobody' });
  ({ engine, dir } = local);
});
afterAll(async () => {
  await local.close();
});

describe.skipIf(process.getuid?.() !== 0)("another run's outputs file", () => {
  it('can be neither read nor changed by a step of another run', async () => {
    const go = join(dir, 'go');
    const mark = marker();
    const victim = await engine.submit({
      name: 'victim',
      steps: {
        v: {
          timeout: '30s',
          run: [
            `echo "token=${mark}" >> "$CONVEYOR_OUTPUT"`,
            'echo "::progress::50"',
            `while [ ! -e ${go} ]; do sleep 0.1; done`,
          ].join('\n'),
        },
      },
    });
    await engine.waitForEvent(victim.id, (e) => e.type === 'step.progress');
    const thief = await engine.submit({
      name: 'thief',
      steps: {
        t: {
          run: `for f in $(grep -l ${mark} /tmp/conveyor-step-*/output 2>/dev/null); do cat "$f"; echo "injected=yes" >> "$f"; done; true`,
        },
      },
    });
    await engine.waitForRun(thief.id);
    writeFileSync(go, '');
    const { run: done } = await engine.waitForRun(victim.id);
    const log = (await engine.request('GET', `/v1/runs/${thief.id}/steps/t/logs`)).body as string;
    const read = (log ?? '').includes(mark);
    expect({ read, outputs: done.steps.v?.outputs }).toEqual({ read: false, outputs: { token: mark } });
  });
});
