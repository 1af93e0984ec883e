/**
 * A throwaway three-master Redis Cluster for tests: `redis-server --cluster-enabled yes` on free
 * ports (spawnRedis, each node with a temp dir of its own), joined by `redis-cli --cluster
 * create`; `stop()` stops the servers and removes their dirs.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { spawnRedis } from './redis-server.ts';

/** A running cluster. */
export interface RedisClusterHandle {
  /** `127.0.0.1:port` of each node (masters first), as `REDIS_CLUSTER_NODES` lists them. */
  nodes: string[];
  ports: number[];
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
  const servers: Array<Awaited<ReturnType<typeof spawnRedis>>> = [];
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
  };
  try {
    // Each node in a data dir of its own (spawnRedis), where it keeps its cluster config.
    const nodeArgs = [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      '2000',
      ...(password ? ['--masterauth', password] : []),
      ...args,
    ];
    for (let i = 0; i < masters * (1 + replicas); i++)
      servers.push(await spawnRedis({ args: nodeArgs, password }));
    const ports = servers.map((server) => server.port);
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
    return { nodes, ports, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
