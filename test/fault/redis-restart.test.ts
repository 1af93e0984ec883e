import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { spawnRedis } from '../support/redis-server.ts';

// A Redis of this file's own, with the append-only file on (as standalone mode and
// infra/redis.conf run it), restarted in the middle of a run: same port, same data dir.
let dir: string;
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let engine: TestEngine;
const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-aof-'));
  redis = await spawnRedis({ dir, args: AOF });
  engine = await startEngine(redis.url, 't-redis-restart', { lockMs: 2000, stalledIntervalMs: 1000 });
});
afterAll(async () => {
  await engine.close();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('Redis restarted mid-run (append-only file on)', () => {
  it('keeps the run, its record and its events, and the run finishes', async () => {
    const run = await engine.submit({
      name: 'survivor',
      steps: {
        a: { run: 'echo a' },
        b: { needs: ['a'], run: 'sleep 1; echo b' },
        c: { needs: ['b'], run: 'echo c' },
      },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.started' && e.data.step === 'b');
    await redis.stop();
    redis = await spawnRedis({ dir, port: redis.port, args: AOF });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(Object.values(done.steps).map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(events[0]!.type).toBe('run.queued');
    expect(events.at(-1)!.type).toBe('run.succeeded');
  }, 30_000); // without the append-only file the run is gone and this would wait forever
});
