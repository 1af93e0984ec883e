/**
 * Review of issue 7 (workspaces, `WORKER_RUN_AS`): `cwd` is checked lexically, then the worker
 * (root) runs `mkdir -p` and `chown` on it. A step running as the unprivileged user can put a
 * symbolic link in the run's workspace; a later step whose `cwd` names that link makes the
 * root worker follow it and hand the link's target to the step user: any directory on the
 * machine (`/etc`, the worker's credentials folder) becomes the step user's, a way to root.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe.skipIf(process.getuid?.() !== 0)('cwd through a link a step left in the workspace', () => {
  it("never gives the link's target to the step user", async () => {
    const victim = join(dir, 'root-owned');
    mkdirSync(victim, { mode: 0o755 });
    const run = await engine.submit({
      name: 'chown-escape',
      steps: {
        plant: { run: `ln -s ${victim} up` },
        use: { needs: ['plant'], cwd: 'up', run: 'touch i-own-this && echo wrote' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(statSync(victim).uid).toBe(0);
    // The link is followed with the step user's rights: into a root-owned directory it cannot write.
    expect(done.steps.use!.status).toBe('failed');
    expect(existsSync(join(victim, 'i-own-this'))).toBe(false);
  });
});
