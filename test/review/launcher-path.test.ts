/**
 * Review of issue 7 (containment, `WORKER_RUN_AS`): the launcher (`setpriv`, then `unshare`) is
 * spawned by name with the step's own environment, so Node looks it up on the step's `PATH`,
 * after changing to the step's working directory. A step that sets `PATH: bin:/usr/bin:/bin`
 * runs a `bin/setpriv` an earlier step of the run left in the workspace, as the worker's user
 * (root here), outside the PID namespace and before the switch to `WORKER_RUN_AS`: containment
 * and the user switch are both gone, and the unprivileged user has root.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveRunAs } from '../../src/workers/local/index.ts';
import type { TestEngine } from '../support/engine.ts';
import { type LocalEngine, startLocalEngine } from '../support/local-engine.ts';

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

describe.skipIf(process.getuid?.() !== 0)("a step's PATH and the launcher", () => {
  it('never runs a launcher the step provided', async () => {
    const proof = join(dir, 'launcher-ran-as');
    const run = await engine.submit({
      name: 'launcher-path',
      steps: {
        plant: {
          run: [
            'mkdir -p bin',
            `printf '#!/bin/sh\\nid -u > ${proof}\\nexit 0\\n' > bin/setpriv`,
            'chmod 755 bin/setpriv',
          ].join('\n'),
        },
        use: { needs: ['plant'], env: { PATH: 'bin:/usr/bin:/bin' }, run: 'id -u' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    const ranAs = existsSync(proof) ? readFileSync(proof, 'utf8').trim() : null;
    expect(ranAs).toBeNull();
    expect(done.steps.plant).toMatchObject({ status: 'succeeded' });
    const log = (await engine.request('GET', `/v1/runs/${run.id}/steps/use/logs`)).body as string;
    expect(String(log).trim()).toBe(String(resolveRunAs('nobody').uid));
  });
});
