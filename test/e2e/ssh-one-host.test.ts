/**
 * A step on a single SSH host runs its instance in the step's own job (src/workers/fan-out.ts):
 * no `@host` child job, yet the same instance record, logs and events as a fan-out, with
 * retries, failures, cancel and timeout ending the step and the run truthfully. Real sshd, real
 * engine, real Redis.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecretKey, parseSecretKey } from '../../src/secrets/index.ts';
import { bullPrefix } from '../../src/store/index.ts';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { inventoryResolver, SshExecutor } from '../../src/workers/ssh/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { eventually } from '../support/processes.ts';
import { remoteProcesses, SSH_USER, type SshdHandle, startSshd } from '../support/sshd.ts';

let engine: TestEngine;
let sshd: SshdHandle;
let dir: string;
let sshQueue: Queue;

beforeAll(async () => {
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'conveyor-one-host-'));
  chmodSync(dir, 0o777); // the remote user writes here
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    secretKey: parseSecretKey(generateSecretKey()),
    executors: ({ inventory, secrets }) => [
      new LocalExecutor(),
      new SshExecutor({
        killGraceMs: 1000,
        resolveHost: inventoryResolver({ inventory, secrets }),
      }),
    ],
  });
  expect((await engine.request('PUT', '/v1/secrets/key', { value: sshd.clientKey })).status).toBe(201);
  const h1 = sshd.inventoryEntry('key', { groups: ['solo', 'pair'] });
  expect((await engine.request('PUT', '/v1/hosts/h1', h1)).status).toBe(201);
  const h2 = sshd.inventoryEntry('key', { groups: ['pair'] });
  expect((await engine.request('PUT', '/v1/hosts/h2', h2)).status).toBe(201);
  sshQueue = new Queue('steps-ssh', { connection: { url: redisUrl() }, prefix: bullPrefix(engine.prefix) });
});
afterAll(async () => {
  await sshQueue?.close();
  await engine?.close();
  await sshd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a step on one SSH host', () => {
  it('runs in its own job with the instance record, logs, events and outputs of a fan-out', async () => {
    const run = await engine.submit({
      name: 'one-host',
      steps: {
        a: { hosts: 'h1', run: 'echo "hello from $CONVEYOR_HOST"; echo v=42 >> "$CONVEYOR_OUTPUT"' },
        b: { needs: ['a'], run: 'test "${{ steps.a.outputs.v }}" = 42' },
      },
    });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    const a = done.steps.a!;
    expect(a).toMatchObject({ status: 'succeeded', attempts: 1, hosts: ['h1'], outputs: { v: '42' } });
    expect(a.instances!.h1).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      exitCode: 0,
      outputs: { v: '42' },
    });
    expect(done.steps.b!.status).toBe('succeeded');

    const progress = events.filter((e) => e.type === 'step.progress' && e.data.step === 'a');
    expect(progress.map((e) => [e.data.host, e.data.status])).toEqual([
      ['h1', 'running'],
      ['h1', 'succeeded'],
    ]);
    const log = await engine.request('GET', `/v1/runs/${run.id}/steps/a/logs?host=h1`);
    expect(log.body).toContain('hello from h1');

    // One job for the step, none for the host.
    expect((await sshQueue.getJob(`${run.id}.a`))?.finishedOn).toBeGreaterThan(0);
    expect(await sshQueue.getJob(`${run.id}.a@h1`)).toBeUndefined();
  });

  it('retries a failed attempt as the step own attempt, on a group of one', async () => {
    const flag = join(dir, 'retry-flag');
    const run = await engine.submit({
      name: 'one-host-retry',
      steps: {
        a: {
          hosts: 'solo',
          retries: { attempts: 2, delay: '50ms' },
          run: `if [ -e ${flag} ]; then echo "second $CONVEYOR_RUN_ATTEMPT"; else touch ${flag}; echo first; exit 7; fi`,
        },
      },
    });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(done.steps.a).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(done.steps.a!.instances!.h1).toMatchObject({ status: 'succeeded', attempts: 2 });
    const retrying = events.filter((e) => e.type === 'step.retrying');
    expect(retrying.map((e) => e.data)).toMatchObject([
      { step: 'a', attempt: 1, nextAttempt: 2, reason: 'failed' },
    ]);
    const first = await engine.request('GET', `/v1/runs/${run.id}/steps/a/logs?host=h1&attempt=1`);
    expect(first.body).toContain('first');
    const second = await engine.request('GET', `/v1/runs/${run.id}/steps/a/logs?host=h1&attempt=2`);
    expect(second.body).toContain('second 2');
  });

  it('fails for good with the host and its reason, and skips the dependents', async () => {
    const run = await engine.submit({
      name: 'one-host-fail',
      steps: {
        a: { hosts: 'h1', run: 'exit 3' },
        b: { needs: ['a'], run: 'true' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('failed');
    expect(done.steps.a!.status).toBe('failed');
    expect(done.steps.a!.error).toEqual({
      code: 'hosts_failed',
      message: '1 of 1 hosts failed: h1 (exited with code 3)',
    });
    expect(done.steps.a!.instances!.h1).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(done.steps.b!.status).toBe('skipped');
  });

  it('is stopped by a cancel: step and host cancelled, the remote process gone', async () => {
    const run = await engine.submit({
      name: 'one-host-cancel',
      steps: { a: { hosts: 'h1', run: 'sleep 454545' } },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.progress' && e.data.status === 'running');
    expect(await eventually(() => remoteProcesses(SSH_USER, 'sleep 454545').length > 0, 5000)).toBe(true);
    expect((await engine.request('POST', `/v1/runs/${run.id}/cancel`)).status).toBe(202);
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('cancelled');
    expect(done.steps.a!.status).toBe('cancelled');
    expect(done.steps.a!.instances!.h1!.status).toBe('cancelled');
    expect(await eventually(() => remoteProcesses(SSH_USER, 'sleep 454545').length === 0, 5000)).toBe(true);
  });

  it('is cancelled while it waits to retry: the step and its host end cancelled', async () => {
    const run = await engine.submit({
      name: 'one-host-cancel-backoff',
      steps: { a: { hosts: 'h1', retries: { attempts: 3, delay: '1h' }, run: 'exit 9' } },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.retrying' && !e.data.host);
    expect((await engine.request('POST', `/v1/runs/${run.id}/cancel`)).status).toBe(202);
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('cancelled');
    expect(done.steps.a!.status).toBe('cancelled');
    expect(done.steps.a!.instances!.h1).toMatchObject({ status: 'cancelled', attempts: 1 });
  });

  it('times out like any step', async () => {
    const run = await engine.submit({
      name: 'one-host-timeout',
      steps: { a: { hosts: 'h1', timeout: '1s', run: 'sleep 464646' } },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('failed');
    expect(done.steps.a!.instances!.h1).toMatchObject({ status: 'failed', error: { code: 'timeout' } });
    expect(done.steps.a!.error!.message).toMatch(/^1 of 1 hosts failed: h1 \(/);
  });

  // An always() cleanup that starts after the cancel runs, on one host or on several (as a local step does).
  it.each([
    ['one host', 'h1', ['h1']],
    ['a group', 'pair', ['h1', 'h2']],
  ])('runs an always() cleanup started after a cancel, on %s', async (_, hosts, names) => {
    const run = await engine.submit({
      name: 'cleanup-after-cancel',
      steps: {
        a: { run: 'sleep 30' },
        cleanup: { needs: ['a'], if: 'always()', hosts, run: 'echo "cleaned on $CONVEYOR_HOST"' },
      },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.started' && e.data.step === 'a');
    expect((await engine.request('POST', `/v1/runs/${run.id}/cancel`)).status).toBe(202);
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('cancelled');
    expect(done.steps.cleanup!.status).toBe('succeeded');
    for (const host of names) {
      expect(done.steps.cleanup!.instances![host]!.status).toBe('succeeded');
      const log = await engine.request('GET', `/v1/runs/${run.id}/steps/cleanup/logs?host=${host}`);
      expect(log.body).toContain(`cleaned on ${host}`);
    }
  });
});
