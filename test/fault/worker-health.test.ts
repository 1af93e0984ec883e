/** A real worker process's health port, with a Redis this file stops and starts. */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ConveyorProcess, spawnConveyor } from '../support/process.ts';
import { freePort, spawnRedis } from '../support/redis-server.ts';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(join(tmpdir(), `conveyor-health-${process.pid}`), { recursive: true, force: true });
});

/** Polls `url` until it answers `status`; returns the last body. */
async function until(url: string, status: number, ms = 15_000): Promise<unknown> {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await fetch(url);
    const body = await res.json();
    if (res.status === status) return body;
    if (Date.now() > deadline) throw new Error(`${url} still answers ${res.status}: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('the worker health port', () => {
  it('answers /healthz always and /readyz only while Redis answers', async () => {
    const redisPort = await freePort();
    let redis = await spawnRedis({ port: redisPort });
    cleanups.push(() => redis.stop());
    const healthPort = await freePort();
    const worker: ConveyorProcess = spawnConveyor('worker', {
      REDIS_URL: redis.url,
      CONVEYOR_PREFIX: `t-worker-health-${process.pid}`,
      WORKER_EXECUTORS: 'local',
      WORKER_HEALTH_PORT: String(healthPort),
      // A dir of its own: the start-up sweep would remove other test files' live workspaces.
      WORKER_WORKSPACE_DIR: join(tmpdir(), `conveyor-health-${process.pid}`),
    });
    cleanups.push(() => worker.stop());
    await worker.line(/worker ready/);
    const base = `http://127.0.0.1:${healthPort}`;

    expect(await (await fetch(`${base}/healthz`)).json()).toMatchObject({ status: 'ok' });
    expect(await until(`${base}/readyz`, 200)).toMatchObject({ status: 'ready' });
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const post = await fetch(`${base}/readyz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');

    await redis.stop();
    expect(await until(`${base}/readyz`, 503)).toEqual({
      status: 'unavailable',
      error: { code: 'unavailable', message: 'Redis is unreachable' },
    });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    redis = await spawnRedis({ port: redisPort });
    expect(await until(`${base}/readyz`, 200)).toMatchObject({ status: 'ready' });
    expect(worker.child.exitCode).toBeNull();
  }, 60_000);
});
