/** Worker heartbeats in Redis: what a worker writes, when an entry stops counting, and removal. */
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys, type WorkerHeartbeat, WorkerRegistry } from '../../src/store/index.ts';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { startWorker } from '../../src/workers/worker.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

const prefix = testPrefix(import.meta.url);
let redis: Redis;
let registry: WorkerRegistry;
beforeAll(() => {
  redis = new Redis(redisUrl());
  registry = new WorkerRegistry(redis, keys(prefix));
});
afterAll(async () => {
  redis.disconnect();
  await dropPrefix(redisUrl(), prefix);
});

function heartbeat(id: string, lastSeen: number, ttlMs = 15_000): WorkerHeartbeat {
  return {
    id,
    host: 'h',
    pid: 1,
    executors: ['local'],
    tags: [],
    concurrency: 4,
    busy: { local: 1 },
    version: '0.0.0',
    startedAt: new Date(lastSeen).toISOString(),
    lastSeen: new Date(lastSeen).toISOString(),
    ttlMs,
  };
}

describe('worker registry', () => {
  it('lists live heartbeats by id and drops those past their TTL from the index', async () => {
    const now = Date.now();
    await registry.record(heartbeat('b', now));
    await registry.record(heartbeat('a', now - 10_000, 12_000));
    expect((await registry.list(now)).map((w) => w.id)).toEqual(['a', 'b']);
    expect(await registry.list(now)).toContainEqual(heartbeat('b', now));
    // 3 s on, `a` (seen 10 s ago, TTL 12 s) no longer counts and leaves the index.
    expect((await registry.list(now + 3000)).map((w) => w.id)).toEqual(['b']);
    expect(await redis.zscore(keys(prefix).workers(), 'a')).toBeNull();
    expect(await redis.pttl(keys(prefix).worker('b'))).toBeGreaterThan(0);
    await registry.remove('b');
    expect(await registry.list(now)).toEqual([]);
  });

  it('a worker is listed once started, with what it serves, and removed when it closes', async () => {
    const worker = await startWorker({
      redisUrl: redisUrl(),
      prefix,
      executors: [new LocalExecutor()],
      concurrency: 5,
      tags: ['gpu'],
      logger: pino({ level: 'silent' }),
    });
    const [listed, ...others] = await registry.list();
    expect(others).toEqual([]);
    expect(listed).toMatchObject({
      executors: ['local'],
      tags: ['gpu'],
      concurrency: 5,
      busy: { local: 0 },
      pid: process.pid,
      ttlMs: 15_000,
    });
    expect(listed!.version).toMatch(/^\d+\.\d+\.\d+/);
    await worker.close();
    expect(await registry.list()).toEqual([]);
  });
});
