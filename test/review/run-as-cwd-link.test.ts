/**
 * Review of issue 8 (WORKER_RUN_AS): a step running as the unprivileged user must not be able to
 * make the root worker act on paths outside the run's workspace. The workspace belongs to that
 * user, so a step can leave a symbolic link in it; a later step's relative `cwd` naming the link
 * passes the "never above the workspace" check (the check is on the path, not on what it
 * resolves to) and the worker, as root, `chown`s the link's target to the step's user.
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { killAllWorkers, spawnWorker } from '../support/worker-process.ts';

let engine: TestEngine;
// A directory only root may write to, standing for /etc or /root/.ssh.
const target = join(tmpdir(), `review8-root-owned-${randomBytes(4).toString('hex')}`);

beforeAll(async () => {
  mkdirSync(target, { mode: 0o755 });
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
});
afterAll(async () => {
  await killAllWorkers();
  await engine.close();
  rmSync(target, { recursive: true, force: true });
});

describe('WORKER_RUN_AS and a cwd through a symbolic link (review 8)', () => {
  it.runIf(process.getuid?.() === 0)(
    "a later step's cwd through a link a step left does not hand a root-owned directory to the step's user",
    async () => {
      spawnWorker(engine.prefix, { WORKER_RUN_AS: 'nobody' });
      const run = await engine.submit({
        name: 'cwd-link',
        steps: {
          plant: { run: `ln -s ${target} link` },
          use: { needs: ['plant'], cwd: 'link', run: 'id -u; touch planted-by-step' },
        },
      });
      const { run: done } = await engine.waitForRun(run.id);
      const owner = statSync(target).uid;
      // Either way the directory must still be root's: a refused cwd is fine, a chown is not.
      expect(done.steps.plant!.status).toBe('succeeded');
      expect(owner).toBe(0);
    },
  );
});
