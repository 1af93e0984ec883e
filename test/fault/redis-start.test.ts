import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startEngine } from '../support/engine.ts';
import { type ConveyorProcess, spawnConveyor } from '../support/process.ts';
import { freePort, spawnRedis } from '../support/redis-server.ts';

const prefix = `t-redis-start-${process.pid}`;
const processes: ConveyorProcess[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  // Processes first: a worker asked to stop while its Redis is gone would wait for it.
  await Promise.all(processes.map((p) => p.stop()));
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function start(mode: string, env: Record<string, string>): ConveyorProcess {
  const p = spawnConveyor(mode, { CONVEYOR_PREFIX: prefix, WORKER_EXECUTORS: 'local', ...env });
  processes.push(p);
  return p;
}

async function connectedClients(redis: Redis): Promise<number> {
  return Number(/connected_clients:(\d+)/.exec(await redis.info('clients'))![1]);
}

describe('Redis at start and while running', () => {
  it('a database index out of range is one clear error, and the process exits', async () => {
    const redis = await spawnRedis();
    cleanups.push(() => redis.stop());
    const p = start('api', { REDIS_URL: `${redis.url}/99`, PORT: '0' });
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain('database 99 does not exist');
    expect(p.output().trim().split('\n').length).toBeLessThanOrEqual(2);
  });

  it('the API and a worker started before Redis wait for it, then survive its restart', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const api = start('api', { REDIS_URL: url, PORT: '0' });
    const worker = start('worker', { REDIS_URL: url });
    // Nothing listens yet: both say they retry instead of exiting.
    expect(await api.line(/is not reachable; retrying/)).toContain('"attempt":1');
    expect(await worker.line(/is not reachable; retrying/)).toContain('"attempt":1');
    let redis = await spawnRedis({ port });
    await api.line(/API listening/);
    await worker.line(/worker ready/);

    // Restarted while they run: the worker reconnects by itself and runs the next step.
    await redis.stop();
    redis = await spawnRedis({ port });
    cleanups.push(() => redis.stop());
    const engine = await startEngine(url, prefix, { worker: false });
    cleanups.push(() => engine.close());
    const run = await engine.submit({ name: 'after-restart', steps: { a: { run: 'echo survived' } } });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(api.child.exitCode).toBeNull();
    expect(worker.child.exitCode).toBeNull();
  }, 30_000);

  it('a worker restarted during a connection storm (Redis at maxclients) keeps retrying', async () => {
    const redis = await spawnRedis();
    cleanups.push(() => redis.stop());
    const holder = new Redis(redis.url);
    cleanups.push(async () => void holder.disconnect());
    await holder.config('SET', 'maxclients', String(await connectedClients(holder)));
    const worker = start('worker', { REDIS_URL: redis.url });
    expect(await worker.line(/is not reachable; retrying/)).toMatch(
      /max number of clients|Connection is closed/,
    );
    await worker.line(/"attempt":2/);
    expect(worker.child.exitCode).toBeNull();
    await holder.config('SET', 'maxclients', '10000');
    await worker.line(/worker ready/);
  }, 30_000);
});
