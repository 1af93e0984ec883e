/**
 * Review of issue 7 (SIGTERM grace is enforced): Kubernetes and systemd send SIGTERM to every
 * process at once, Redis included, or Redis is simply gone when a node drains. A worker told to
 * stop while Redis does not answer must still exit within its grace plus the kill grace (its
 * steps die with it through the parent-death signal), never wait for Redis forever. Here the
 * step's processes are stopped, but the worker process is still there 45 s after SIGTERM
 * (closing BullMQ and ioredis waits for a Redis that is not coming back).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { waitForRunEvent } from '../support/engine.ts';
import { marker, processesWithEnv } from '../support/processes.ts';
import { spawnRedis } from '../support/redis-server.ts';
import { killAllWorkers, spawnWorker } from '../support/worker-process.ts';

let api: ConveyorApi;
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let dir: string;
const prefix = 't-review-shutdown-redis-down';

beforeAll(async () => {
  // A Redis of this file's own, so stopping it disturbs no other test.
  redis = await spawnRedis();
  dir = mkdtempSync(join(tmpdir(), 'conveyor-review-down-'));
  api = await startApi({ redisUrl: redis.url, prefix, logger: pino({ level: 'silent' }) });
});
afterEach(killAllWorkers);
afterAll(async () => {
  await api.close();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('SIGTERM while Redis is down', () => {
  it('exits within the grace and the step dies with it', async () => {
    const mark = marker();
    const res = await api.app.request('/v1/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        workflow: { name: 'down', steps: { s: { env: { MARK: mark }, run: 'echo up; sleep 60' } } },
      }),
    });
    const runId = ((await res.json()) as { id: string }).id;
    const worker = spawnWorker(prefix, {
      REDIS_URL: redis.url,
      WORKER_SHUTDOWN_GRACE_MS: '2000',
      WORKER_WORKSPACE_DIR: join(dir, 'ws'),
    });
    await waitForRunEvent(api, runId, (event) => event.type === 'step.log');
    await redis.stop();
    const exited = new Promise<boolean>((resolve) => worker.once('exit', () => resolve(true)));
    worker.kill('SIGTERM');
    // Grace 2 s, then the hand-back's 5 s: 20 s is far past anything the worker may take.
    const bound = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 20_000).unref());
    const didExit = await Promise.race([exited, bound]);
    const left = processesWithEnv('MARK', mark);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    expect(didExit).toBe(true);
    expect(left).toEqual([]);
  }, 40_000);
});
