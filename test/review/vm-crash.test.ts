/**
 * Review of issue 7 (no step process outlives its worker): local steps are contained by a PID
 * namespace entered through a parent-death signal, and sandboxed VM steps by bubblewrap's
 * `--die-with-parent`. A VM step with `vm.sandbox: false` has neither: its process group is
 * only killed by the worker itself, so a SIGKILLed worker leaves it running.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { eventually, marker, processesWithEnv } from '../support/processes.ts';
import { killAllWorkers, killWorker, spawnWorker } from '../support/worker-process.ts';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
});
afterEach(killAllWorkers);
afterAll(async () => {
  await engine.close();
});

describe('a VM step without the sandbox, its worker SIGKILLed', () => {
  it('dies with its worker within 5 s', async () => {
    const mark = marker();
    const run = await engine.submit({
      name: 'vm-crash',
      steps: {
        s: { env: { MARK: mark }, vm: { sandbox: false }, run: 'echo started; sleep 300', timeout: '60s' },
      },
    });
    const worker = spawnWorker(engine.prefix, { WORKER_EXECUTORS: 'vm', WORKER_VM_POOL: '0' });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.log' && e.data.step === 's');
    expect(processesWithEnv('MARK', mark).length).toBeGreaterThan(0);
    await killWorker(worker);
    const gone = await eventually(() => processesWithEnv('MARK', mark).length === 0, 5000);
    for (const pid of processesWithEnv('MARK', mark)) process.kill(pid, 'SIGKILL');
    expect(gone).toBe(true);
  });
});
