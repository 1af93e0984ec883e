/**
 * A real worker process SIGKILLed while a one-host SSH step runs in the step's own job
 * (src/workers/fan-out.ts): the remote process dies with the connection, the next worker runs
 * attempt 2 of the step and of its host, and the run's record says so everywhere. A SIGTERM past
 * the shutdown grace hands the step back the same way.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateSecretKey, parseSecretKey } from '../../src/secrets/index.ts';
import type { RunEvent } from '../../src/store/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { eventually } from '../support/processes.ts';
import { remoteProcesses, SSH_USER, type SshdHandle, startSshd } from '../support/sshd.ts';
import { killAllWorkers, killWorker, spawnWorker as spawnOne } from '../support/worker-process.ts';

const SECRET_KEY = generateSecretKey();
let engine: TestEngine;
let sshd: SshdHandle;
let dir: string;

/**
 * An SSH worker with short locks, for fast recovery. The key comes from a file: with none in
 * its environment the worker runs without a supervisor, so the SIGKILL hits the worker itself.
 */
const spawnWorker = () =>
  spawnOne(engine.prefix, {
    WORKER_EXECUTORS: 'ssh',
    CONVEYOR_SECRET_KEY_FILE: join(dir, 'secret-key'),
    WORKER_LOCK_MS: '2000',
    WORKER_STALLED_INTERVAL_MS: '1000',
    WORKER_SHUTDOWN_GRACE_MS: '1000',
  });

beforeAll(async () => {
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'conveyor-ssh-crash-'));
  chmodSync(dir, 0o777); // the remote user writes here
  writeFileSync(join(dir, 'secret-key'), SECRET_KEY, { mode: 0o600 });
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    worker: false,
    secretKey: parseSecretKey(SECRET_KEY),
  });
  expect((await engine.request('PUT', '/v1/secrets/key', { value: sshd.clientKey })).status).toBe(201);
  expect((await engine.request('PUT', '/v1/hosts/h1', sshd.inventoryEntry('key'))).status).toBe(201);
});
afterEach(killAllWorkers);
afterAll(async () => {
  await engine?.close();
  await sshd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a worker killed with SIGKILL mid one-host SSH step', () => {
  it('loses the remote process with it; the re-run is attempt 2 of the step and of the host', async () => {
    const order = join(dir, 'order');
    const run = await engine.submit({
      name: 'ssh-crash',
      steps: {
        a: {
          hosts: 'h1',
          run: [
            `echo "attempt $CONVEYOR_RUN_ATTEMPT" >> ${order}`,
            '[ "$CONVEYOR_RUN_ATTEMPT" = 1 ] && sleep 575757',
            'echo done',
          ].join('\n'),
        },
      },
    });
    const first = spawnWorker();
    expect(await eventually(() => remoteProcesses(SSH_USER, 'sleep 575757').length > 0, 20_000)).toBe(true);
    await killWorker(first);
    // The remote side notices its connection is gone and kills the step's process group.
    expect(await eventually(() => remoteProcesses(SSH_USER, 'sleep 575757').length === 0, 10_000)).toBe(true);

    spawnWorker();
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(done.steps.a).toMatchObject({ status: 'succeeded', attempts: 2, hosts: ['h1'] });
    expect(done.steps.a!.instances!.h1).toMatchObject({ status: 'succeeded', attempts: 2, exitCode: 0 });
    expect(readFileSync(order, 'utf8')).toBe('attempt 1\nattempt 2\n');
    // Both the step and its host say they start again: the step's event, then the host's.
    const retrying = events.filter((e) => e.type === 'step.retrying' && e.data.step === 'a');
    expect(retrying.map((e) => e.data)).toMatchObject([
      { attempt: 1, nextAttempt: 2, reason: 'interrupted', error: { code: 'worker_lost' } },
      { attempt: 1, nextAttempt: 2, reason: 'interrupted', host: 'h1' },
    ]);
    expect(retrying[0]!.data.host).toBeUndefined();
    expect(events.filter((e) => e.type === 'step.succeeded')).toHaveLength(1);
  });

  it('hands the step back at SIGTERM past the grace; another worker runs attempt 2 of both', async () => {
    const run = await engine.submit({
      name: 'ssh-shutdown',
      steps: {
        a: {
          hosts: 'h1',
          run: '[ "$CONVEYOR_RUN_ATTEMPT" = 1 ] && sleep 585858; echo "attempt $CONVEYOR_RUN_ATTEMPT"',
        },
      },
    });
    const first = spawnWorker();
    expect(await eventually(() => remoteProcesses(SSH_USER, 'sleep 585858').length > 0, 20_000)).toBe(true);
    const exited = new Promise((resolve) => first.once('exit', resolve));
    first.kill('SIGTERM');
    await exited;
    expect(remoteProcesses(SSH_USER, 'sleep 585858')).toEqual([]);
    const handedBack = await engine.waitForEvent(run.id, (e) => e.type === 'step.retrying' && !e.data.host);
    expect(handedBack.data).toMatchObject({ attempt: 1, nextAttempt: 2, reason: 'shutdown' });

    spawnWorker();
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(done.steps.a).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(done.steps.a!.instances!.h1).toMatchObject({ status: 'succeeded', attempts: 2 });
    const log = await engine.request('GET', `/v1/runs/${run.id}/steps/a/logs?host=h1`);
    expect(log.body).toBe('attempt 2\n');
  });

  it('fails the step and its host, both final and listed, when its worker dies three times', async () => {
    const run = await engine.submit({
      name: 'ssh-poison',
      steps: {
        a: { hosts: 'h1', run: 'sleep 595959' },
        b: { needs: ['a'], hosts: 'h1', run: 'true' },
      },
    });
    const started = (attempt: number) => (e: RunEvent) =>
      e.type === 'step.progress' && e.data.status === 'running' && e.data.attempt === attempt;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const worker = spawnWorker();
      await engine.waitForEvent(run.id, started(attempt));
      await killWorker(worker);
    }
    spawnWorker();
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('failed');
    expect(done.steps.a).toMatchObject({
      status: 'failed',
      attempts: 3,
      hosts: ['h1'],
      error: { code: 'worker_lost', message: 'its worker died 3 times while running it' },
    });
    // The host's record ends too: no instance is left running under a failed step.
    expect(done.steps.a!.instances!.h1).toMatchObject({ status: 'failed', error: { code: 'worker_lost' } });
    expect(done.steps.b!.status).toBe('skipped');
    expect(await eventually(() => remoteProcesses(SSH_USER, 'sleep 595959').length === 0, 10_000)).toBe(true);
  });
});
