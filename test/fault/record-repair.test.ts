/**
 * The periodic record repair: runs whose record and queue disagree (writes lost in a Redis
 * restart) are repaired. The disagreements are injected directly, plus one real restart of a
 * Redis with AOF `everysec` that this file owns, killed mid-run.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/store/index.ts';
import { LocalExecutor, Workspaces } from '../../src/workers/local/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { spawnConveyor } from '../support/process.ts';
import { freePort, spawnRedis } from '../support/redis-server.ts';

let engine: TestEngine;
let redis: Redis;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-repair-'));
  // Workspaces of this file's own: a worker's start-up sweep would remove other files' live ones.
  const workspaces = new Workspaces({ baseDir: join(dir, 'workspaces') });
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    executors: [new LocalExecutor({ killGraceMs: 1000, workspaces })],
    reconcileIntervalMs: 300,
    reconcileGraceMs: 200,
  });
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  redis.disconnect();
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('record repair', () => {
  it("writes a run's lost final status again from its completed root job", async () => {
    const run = await engine.submit({ name: 'lost-end', steps: { a: { run: 'true' } } });
    await engine.waitForRun(run.id);
    // As if the final write and its event were lost while the root job's completion was kept.
    const k = keys(engine.prefix);
    await redis.hset(k.run(run.id), 'status', 'running');
    await redis.hdel(k.run(run.id), 'finishedAt');
    const [last] = await redis.xrevrange(k.events(run.id), '+', '-', 'COUNT', 1);
    await redis.xdel(k.events(run.id), last![0]);
    await redis.zadd(k.activeRuns(), Date.parse(run.createdAt), run.id);

    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(events.at(-1)).toMatchObject({ type: 'run.succeeded', data: { reconciled: true } });
    expect(await redis.zscore(k.activeRuns(), run.id)).toBeNull();
  });

  it('fails a step the record says is running although its job completed, with the reason', async () => {
    const file = join(dir, 'go');
    const run = await engine.submit({
      name: 'lost-step',
      steps: {
        a: { run: 'echo a' },
        b: { needs: ['a'], run: `while [ ! -e ${file} ]; do sleep 0.05; done` },
      },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.started' && e.data.step === 'b');
    // a's final write lost: the record is back at running, its job completed.
    await redis.hset(keys(engine.prefix).run(run.id), 'st:a', 'running');
    const failed = await engine.waitForEvent(run.id, (e) => e.type === 'step.failed' && e.data.step === 'a');
    expect(failed.data).toMatchObject({ reconciled: true, error: { code: 'lost' } });
    writeFileSync(file, '');
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('failed');
    expect(done.steps.a).toMatchObject({
      status: 'failed',
      error: { code: 'lost', message: 'its job ended but its status never reached the run record' },
    });
    expect(done.steps.b!.status).toBe('succeeded');
  });

  it('still repairs a run that keeps writing events (a busy run is looked at fully less often)', async () => {
    const file = join(dir, 'busy-go');
    const run = await engine.submit({
      name: 'lost-busy',
      steps: {
        a: { run: 'echo a' },
        b: { needs: ['a'], run: `while [ ! -e ${file} ]; do echo tick; sleep 0.05; done` },
      },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.log' && e.data.step === 'b');
    // a's final write lost while b keeps logging: the run's stream grows between passes.
    await redis.hset(keys(engine.prefix).run(run.id), 'st:a', 'running');
    const failed = await engine.waitForEvent(run.id, (e) => e.type === 'step.failed' && e.data.step === 'a');
    expect(failed.data).toMatchObject({ reconciled: true, error: { code: 'lost' } });
    writeFileSync(file, '');
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.a!.status).toBe('failed');
    expect(done.steps.b!.status).toBe('succeeded');
  });

  it('fails a run whose root job is missing, with the reason, and skips what is left', async () => {
    const run = await engine.submit({
      name: 'lost-root',
      steps: {
        a: { run: `while [ ! -e ${join(dir, 'never')} ]; do sleep 0.05; done` },
        b: { needs: ['a'], run: 'true' },
      },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.started' && e.data.step === 'a');
    await redis.del(`{${engine.prefix}}:runs:${run.id}`);
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('failed');
    expect(events.at(-1)!.data).toMatchObject({
      reconciled: true,
      error: {
        code: 'lost',
        message:
          'the run cannot continue: its root job is missing from the queue (lost in a Redis restart or failover)',
      },
    });
    expect(done.cancelRequested).toBe(true);
  });
});

describe('a real Redis restart (AOF everysec) mid-run', () => {
  it('the run still ends, every step final, nothing left running', async () => {
    const port = await freePort();
    const data = join(dir, 'redis');
    const args = ['--appendonly', 'yes', '--appendfsync', 'everysec'];
    mkdirSync(data);
    let own = await spawnRedis({ port, dir: data, args });
    const prefix = testPrefix(import.meta.url);
    const api = await startEngine(own.url, prefix, { worker: false });
    const worker = spawnConveyor('worker', {
      REDIS_URL: own.url,
      CONVEYOR_PREFIX: prefix,
      WORKER_EXECUTORS: 'local',
      WORKER_LOCK_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      WORKER_RECONCILE_INTERVAL_MS: '1000',
      WORKER_WORKSPACE_DIR: join(dir, 'workspaces'),
    });
    try {
      await worker.line(/worker ready/);
      const steps: Record<string, unknown> = { root: { run: 'sleep 0.1' } };
      for (let i = 0; i < 4; i++) steps[`mid${i}`] = { needs: ['root'], run: 'sleep 0.3' };
      steps.join = { needs: ['mid0', 'mid1', 'mid2', 'mid3'], run: 'sleep 0.2' };
      for (let i = 0; i < 6; i++) steps[`c${i}`] = { needs: [i ? `c${i - 1}` : 'join'], run: 'sleep 0.2' };
      const run = await api.submit({ name: 'restart', steps });
      await api.waitForEvent(run.id, (e) => e.type === 'step.succeeded' && e.data.step === 'mid1');
      // Killed, not stopped: whatever was not yet fsynced (up to a second of writes) is gone.
      own.process.kill('SIGKILL');
      await new Promise((resolve) => own.process.once('exit', resolve));
      own = await spawnRedis({ port, dir: data, args });

      let done:
        | { status: string; steps: Record<string, { status: string; error?: { code: string } }> }
        | undefined;
      const deadline = Date.now() + 45_000;
      while (Date.now() < deadline) {
        const res = await api.request('GET', `/v1/runs/${run.id}`).catch(() => undefined);
        if (res?.status === 200 && ['succeeded', 'failed'].includes(res.body.status)) {
          done = res.body;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(done, 'the run never ended after the restart').toBeDefined();
      for (const step of Object.values(done!.steps)) {
        expect(['succeeded', 'failed', 'skipped']).toContain(step.status);
        if (step.status === 'failed') expect(step.error?.code).toBeTruthy();
      }
      expect(existsSync(join(data, 'appendonlydir'))).toBe(true);
    } finally {
      await worker.stop();
      await api.close();
      await own.stop();
    }
  }, 90_000);
});
