import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startPrivateRedis } from '../../src/standalone-redis.ts';
import { dropPrefix } from '../support/prefix.ts';
import { freePort } from '../support/redis-server.ts';
import { readSse } from '../support/sse.ts';

const dir = mkdtempSync(join(tmpdir(), 'conveyor-standalone-'));
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves with the first stdout line matching `pattern` (pino JSON lines). */
function waitForLine(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const line = buffer.split('\n').find((l) => pattern.test(l));
      if (line) resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before "${pattern}": ${buffer}`)));
  });
}

describe('npm start (standalone)', () => {
  it('serves the API and runs a POSTed diamond to succeeded', async () => {
    const port = await freePort();
    const prefix = `t-standalone-${process.pid}`;
    // As a user runs it: no REDIS_URL, so the default URL (the machine's Redis, or a private one).
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(port),
      CONVEYOR_PREFIX: prefix,
      CONVEYOR_DATA_DIR: dir,
    };
    delete env.REDIS_URL;
    const child = spawn(process.execPath, ['bin/conveyor.mjs', 'standalone'], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    cleanups.push(async () => {
      child.kill('SIGTERM');
      await exited;
      await dropPrefix('redis://127.0.0.1:6379', prefix).catch(() => {});
    });
    await waitForLine(child, /API listening/);

    const res = await fetch(`http://127.0.0.1:${port}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: [
        'workflow:',
        '  name: diamond',
        '  steps:',
        '    a: { run: echo a }',
        '    b: { needs: [a], run: echo b }',
        '    c: { needs: [a], run: echo c }',
        '    d: { needs: [b, c], run: echo d }',
      ].join('\n'),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const { messages, ended } = await readSse(`http://127.0.0.1:${port}/v1/runs/${id}/events`);
    expect(ended).toBe(true);
    expect(messages.at(-1)!.event).toBe('run.succeeded');
    const doc = (await (await fetch(`http://127.0.0.1:${port}/v1/runs/${id}`)).json()) as {
      steps: Record<string, { status: string }>;
    };
    expect(Object.values(doc.steps).map((s) => s.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
  });

  it('starts a private redis-server with its data on disk and the append-only file on', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const child = await startPrivateRedis(url, dir);
    cleanups.push(() => void child.kill('SIGTERM'));
    const redis = new Redis(url);
    try {
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      expect(((await redis.config('GET', 'dir')) as string[])[1]).toBe(join(dir, 'redis'));
      await redis.set('k', 'v');
    } finally {
      redis.disconnect();
    }
    expect(existsSync(join(dir, 'redis'))).toBe(true);
  });
});
