import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { freePort, waitForRedis } from '../support/redis-server.ts';

// A Redis of this file's own, with the append-only file on (as standalone mode and
// infra/redis.conf run it), restarted in the middle of a run.
let dir: string;
let port: number;
let redis: ChildProcess | undefined;
let engine: TestEngine;

async function startRedis(): Promise<void> {
  redis = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  );
  await waitForRedis(`redis://127.0.0.1:${port}`);
}

async function stopRedis(): Promise<void> {
  const child = redis!;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-aof-'));
  port = await freePort();
  await startRedis();
  engine = await startEngine(`redis://127.0.0.1:${port}`, 't-redis-restart', {
    lockMs: 2000,
    stalledIntervalMs: 1000,
  });
});
afterAll(async () => {
  await engine.close();
  await stopRedis();
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
    await stopRedis();
    await startRedis();
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(Object.values(done.steps).map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(events[0]!.type).toBe('run.queued');
    expect(events.at(-1)!.type).toBe('run.succeeded');
  }, 30_000); // without the append-only file the run is gone and this would wait forever
});
