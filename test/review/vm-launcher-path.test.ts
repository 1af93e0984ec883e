/**
 * Review of issue 7 (timeouts and fences that hold whatever the step does): a VM step's
 * processes are started as `prlimit … bwrap … sh -c`, with `prlimit` looked up by name on the
 * environment the guest gets, and the step's `env` may replace that `PATH`. A step with
 * `env: { PATH: <a folder holding a prlimit of its choosing> }` then runs with no rlimits, no
 * bubblewrap, no network fence: the sandbox never starts.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { killAllWorkers, spawnWorker } from '../support/worker-process.ts';

let engine: TestEngine;
let dir: string;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
  dir = mkdtempSync(join(tmpdir(), 'conveyor-review-vmpath-'));
  chmodSync(dir, 0o755);
});
afterEach(killAllWorkers);
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("a VM step's PATH and its launcher", () => {
  it('never runs a prlimit the step chose instead of the sandbox', async () => {
    const bin = join(dir, 'bin');
    const proof = join(dir, 'proof');
    mkdirSync(bin, { mode: 0o755 });
    chmodSync(dir, 0o777); // the fake launcher, running as the VM's uid, writes its proof here
    writeFileSync(join(bin, 'prlimit'), `#!/bin/sh\necho unsandboxed > ${proof}\nexit 0\n`, { mode: 0o755 });
    const run = await engine.submit({
      name: 'vm-path',
      steps: { s: { vm: {}, env: { PATH: `${bin}:/usr/bin:/bin` }, run: 'echo inside', timeout: '30s' } },
    });
    spawnWorker(engine.prefix, { WORKER_EXECUTORS: 'vm', WORKER_VM_POOL: '0' });
    await engine.waitForRun(run.id);
    expect(existsSync(proof)).toBe(false);
  });
});
