/**
 * The Redis every test talks to: `REDIS_URL` when set, else a testcontainers Redis where a
 * Docker engine answers, else a private `redis-server` from PATH on a free port in a temp dir.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A running Redis and how to stop it. */
export interface RedisHandle {
  url: string;
  source: 'env' | 'container' | 'spawned';
  stop(): Promise<void>;
}

/** Finds a TCP port nothing listens on (the kernel picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once Redis at `url` answers PING, or rejects after `timeoutMs`. */
export async function waitForRedis(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {}); // connect() rejects; the event would only be noise
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`Redis at ${url} did not answer within ${timeoutMs} ms`, { cause: err });
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      client.disconnect();
    }
  }
}

async function dockerAnswers(): Promise<boolean> {
  if (!process.env.DOCKER_HOST && !existsSync('/var/run/docker.sock')) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

/** Spawns `redis-server` on a free port with its data in a temp dir (no persistence). */
export async function spawnRedis(
  options: {
    /** Extra redis-server arguments; later ones win over the defaults. */
    args?: string[];
    /** A fixed port (to restart "the same" Redis); default a free one. */
    port?: number;
    /** A data dir the caller owns (kept on stop); default a temp dir removed on stop. */
    dir?: string;
    /** `requirepass`: the handle's `url` carries it, and the start waits with it. */
    password?: string;
  } = {},
): Promise<RedisHandle & { port: number; process: ChildProcess; dir: string }> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'conveyor-redis-'));
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      ...(options.password ? ['--requirepass', options.password] : []),
      ...(options.args ?? []),
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const credentials = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  const url = `redis://${credentials}127.0.0.1:${port}`;
  await waitForRedis(url);
  return {
    url,
    port,
    dir,
    process: child,
    source: 'spawned',
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts (or finds) the Redis for a test run, per the order in this module's header. */
export async function startRedis(): Promise<RedisHandle> {
  if (process.env.REDIS_URL) {
    const url = process.env.REDIS_URL;
    await waitForRedis(url);
    return { url, source: 'env', stop: async () => {} };
  }
  if (await dockerAnswers()) {
    const { RedisContainer } = await import('@testcontainers/redis');
    const container = await new RedisContainer('redis:7-alpine').start();
    return {
      url: container.getConnectionUrl(),
      source: 'container',
      stop: async () => void (await container.stop()),
    };
  }
  return spawnRedis();
}
