import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { spawnRedis } from '../support/redis-server.ts';

let api: ConveyorApi;
let redis: Awaited<ReturnType<typeof spawnRedis>>;

beforeAll(async () => {
  // A Redis of this file's own, so stopping it disturbs no other test.
  redis = await spawnRedis();
  api = await startApi({ redisUrl: redis.url, prefix: 't-redis-down', logger: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await api.close();
  await redis.stop();
});

describe('Redis unavailable', () => {
  it('answers 503 at once, never hangs, and /readyz says so', async () => {
    await redis.stop();
    const submit = await api.app.request('/v1/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: { name: 'x', steps: { a: { run: 'true' } } } }),
    });
    expect(submit.status).toBe(503);
    expect(((await submit.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    const read = await api.app.request('/v1/runs/run_x');
    expect(read.status).toBe(503);
    const ready = await api.app.request('/readyz');
    expect(ready.status).toBe(503);
    expect((await api.app.request('/healthz')).status).toBe(200);
  }, 10_000); // a hang fails the test instead of passing late
});
