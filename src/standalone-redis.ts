/**
 * Standalone mode's private Redis: when nothing answers at the default REDIS_URL, start a
 * `redis-server` from PATH with its data under `<data dir>/redis` (append-only file on, so
 * nothing submitted is lost across restarts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { UnavailableError } from './errors.ts';

/** True when Redis at `url` answers PING within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Starts a private redis-server on the URL's port; resolves once it answers. */
export async function startPrivateRedis(url: string, dataDir: string): Promise<ChildProcess> {
  const { port, hostname } = new URL(url);
  const dir = resolve(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const child = spawn(
    'redis-server',
    [
      '--port',
      port || '6379',
      '--bind',
      hostname || '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: 'ignore' },
  );
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) =>
      reject(
        new UnavailableError(`could not start redis-server (is it installed and on PATH?): ${err.message}`, {
          cause: err,
        }),
      ),
    );
    child.once('exit', (code) =>
      reject(new UnavailableError(`redis-server exited with code ${code} at start`)),
    );
  });
  const deadline = Date.now() + 10_000;
  const ready = (async () => {
    while (Date.now() < deadline) {
      if (await redisAnswers(url, 200)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new UnavailableError('redis-server did not answer within 10 s');
  })();
  await Promise.race([ready, failed]);
  return child;
}
