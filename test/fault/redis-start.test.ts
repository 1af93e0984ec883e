import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { dropPrefix } from '../support/prefix.ts';
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

describe('Redis at start', () => {
  it('a database index out of range is one clear error, and the process exits', async () => {
    const redis = await spawnRedis();
    cleanups.push(() => redis.stop());
    const p = start('api', { REDIS_URL: `${redis.url}/99`, PORT: '0' });
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain('database 99 does not exist');
    expect(p.output().trim().split('\n').length).toBeLessThanOrEqual(2);
  });

  it('a worker started while Redis is down, then at maxclients, keeps retrying and gets ready', async () => {
    const port = await freePort();
    const worker = start('worker', { REDIS_URL: `redis://127.0.0.1:${port}` });
    // Nothing listens yet: the worker says it retries instead of exiting.
    expect(await worker.line(/is not reachable; retrying/)).toContain('"attempt":1');
    const redis = await spawnRedis({ port });
    cleanups.push(() => redis.stop());
    await worker.line(/worker ready/);
    await dropPrefix(redis.url, prefix);

    // A connection storm: Redis refuses every new client; a restarted worker waits it out.
    const holder = new Redis(redis.url);
    cleanups.push(async () => void holder.disconnect());
    const { connected } = await clients(holder);
    await holder.config('SET', 'maxclients', String(connected));
    const second = start('worker', { REDIS_URL: redis.url });
    expect(await second.line(/is not reachable; retrying/)).toMatch(
      /max number of clients|Connection is closed/,
    );
    await second.line(/"attempt":2/);
    expect(second.child.exitCode).toBeNull();
    await holder.config('SET', 'maxclients', '10000');
    await second.line(/worker ready/);
  }, 30_000);
});

async function clients(redis: Redis): Promise<{ connected: number }> {
  const info = await redis.info('clients');
  return { connected: Number(/connected_clients:(\d+)/.exec(info)![1]) };
}
