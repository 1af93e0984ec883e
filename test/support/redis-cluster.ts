/**
 * A throwaway three-master Redis Cluster for tests: `redis-server --cluster-enabled yes` on free
 * ports, each with its data in one temp dir, joined by `redis-cli --cluster create`; `stop()`
 * kills the servers and removes the dir.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, waitForRedis } from './redis-server.ts';

/** A running cluster. */
export interface RedisClusterHandle {
  /** `127.0.0.1:port` of each node (masters first), as `REDIS_CLUSTER_NODES` lists them. */
  nodes: string[];
  ports: number[];
  dir: string;
  stop(): Promise<void>;
}

const run = promisify(execFile);

/** Options of a test cluster. */
export interface RedisClusterOptions {
  /** @defaultValue 3 */
  masters?: number;
  /** Replicas per master (`--cluster-replicas`). @defaultValue 0 */
  replicas?: number;
  /** Extra `redis-server` arguments for every node. */
  args?: string[];
  /** `requirepass` (and `masterauth`) of every node. */
  password?: string;
}

/** Starts cluster-enabled servers and joins them; resolves once every node says `cluster_state:ok`. */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const { masters = 3, replicas = 0, args = [], password } = options;
  const auth = password ? ['--requirepass', password, '--masterauth', password] : [];
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-cluster-'));
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    for (let i = 0; i < masters * (1 + replicas); i++) ports.push(await freePort());
    for (const port of ports) {
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--cluster-node-timeout',
          '2000',
          '--dir',
          dir,
          '--dbfilename',
          `dump-${port}.rdb`,
          '--appendfilename',
          `appendonly-${port}.aof`,
          '--appenddirname',
          `aof-${port}`,
          '--save',
          '',
          ...auth,
          ...args,
        ],
        { stdio: 'ignore' },
      );
      children.push(child);
    }
    const credentials = password ? `:${encodeURIComponent(password)}@` : '';
    await Promise.all(ports.map((port) => waitForRedis(`redis://${credentials}127.0.0.1:${port}`)));
    const nodes = ports.map((port) => `127.0.0.1:${port}`);
    // The password goes in REDISCLI_AUTH, not on the command line (ps would show it).
    await run(
      'redis-cli',
      ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'],
      {
        timeout: 20_000,
        env: password ? { ...process.env, REDISCLI_AUTH: password } : process.env,
      },
    );
    // Every node must agree before clients see a stable slot map.
    for (const port of ports) {
      const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, password });
      try {
        await client.connect();
        const deadline = Date.now() + 20_000;
        while (!/cluster_state:ok/.test(String(await client.cluster('INFO')))) {
          if (Date.now() > deadline) throw new Error(`cluster node ${port} never reached cluster_state:ok`);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        client.disconnect();
      }
    }
    return { nodes, ports, dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
