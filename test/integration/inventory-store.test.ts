/**
 * The worker's inventory reads (src/store/inventory-store.ts): with `reuseMs`, loads close
 * together share one read, so a step's fan-out and its SSH executor cost one HGETALL; without
 * it (the API), every load reads Redis. Real Redis.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InventoryStore } from '../../src/store/index.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

const prefix = testPrefix(import.meta.url);
let redis: Redis;
let reads = 0;

beforeAll(() => {
  redis = new Redis(redisUrl());
  const real = redis.hgetall.bind(redis);
  redis.hgetall = ((...args: Parameters<typeof real>) => {
    reads++;
    return real(...args);
  }) as typeof redis.hgetall;
});
afterAll(async () => {
  redis.disconnect();
  await dropPrefix(redisUrl(), prefix);
});

const host = (address: string) => ({ address, user: 'deploy', auth: { type: 'agent' } });

describe('inventory reads', () => {
  it('share one read within reuseMs, and read again for a store without it', async () => {
    const writer = new InventoryStore(redis, prefix);
    await writer.put('web-1', host('10.0.0.1'));
    const worker = new InventoryStore(redis, prefix, undefined, 60_000);
    reads = 0;
    const [first, second] = await Promise.all([worker.load(), worker.load()]);
    expect(Object.keys(first.hosts)).toEqual(['web-1']);
    expect(second).toBe(first);
    expect(reads).toBe(1);

    // Within the window a change is not read yet; a store that does not reuse sees it at once.
    await writer.put('web-2', host('10.0.0.2'));
    expect(Object.keys((await worker.load()).hosts)).toEqual(['web-1']);
    expect(Object.keys((await writer.load()).hosts).sort()).toEqual(['web-1', 'web-2']);
    expect(
      Object.keys((await new InventoryStore(redis, prefix, undefined, 60_000).load()).hosts).sort(),
    ).toEqual(['web-1', 'web-2']);
  });

  it('does not keep a failed read', async () => {
    const broken = new Redis(redisUrl(), { lazyConnect: true, enableOfflineQueue: false });
    const worker = new InventoryStore(broken, prefix, undefined, 60_000);
    await expect(worker.load()).rejects.toThrow();
    // The failed command started the connection: once it is up, the next load reads again.
    if (broken.status !== 'ready') await new Promise((resolve) => broken.once('ready', resolve));
    expect(Object.keys((await worker.load()).hosts)).toContain('web-1');
    broken.disconnect();
  });
});
