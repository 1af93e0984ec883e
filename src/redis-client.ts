/**
 * Every Redis connection Conveyor opens, through one factory: one server (`REDIS_URL`) or a Redis
 * Cluster (`REDIS_CLUSTER_NODES`, with the URL's credentials and TLS for every node). Callers ask
 * for plain ioredis options; in cluster mode they are mapped onto the cluster's and its nodes'.
 *
 * Every key of Conveyor's lives under one hash tag (`{prefix}`), so all of them sit in one slot:
 * the few commands that name no key (`CLIENT ID`/`UNBLOCK`, `CONFIG GET`) and blocking reads
 * that must stay on one connection go to the node that owns that slot (`slotOwner`).
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/** A Redis Cluster seed node. */
export interface RedisNode {
  host: string;
  port: number;
}

/** Where Redis is. */
export interface RedisTarget {
  /**
   * `REDIS_URL` with `REDIS_PASSWORD` folded in. In cluster mode only its username, password
   * and scheme (`rediss:` = TLS) are used; its host is not.
   */
  url: string;
  /** `REDIS_CLUSTER_NODES`: seed nodes of a Redis Cluster; set = cluster mode. */
  cluster?: readonly RedisNode[];
}

/** A connection: to one server, or to a cluster. */
export type RedisClient = Redis | Cluster;

/** Most seed nodes `REDIS_CLUSTER_NODES` may list. */
export const MAX_CLUSTER_NODES = 64;

/** `host:port,host:port,…` (IPv6 as `[::1]:7000`) → nodes, or `{ error }`. */
export function parseClusterNodes(text: string): RedisNode[] | { error: string } {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) return { error: 'list at least one host:port' };
  if (items.length > MAX_CLUSTER_NODES) return { error: `at most ${MAX_CLUSTER_NODES} nodes` };
  const nodes: RedisNode[] = [];
  for (const item of items) {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]{1,253})):(\d{1,5})$/.exec(item);
    const port = Number(match?.[3]);
    if (!match || port < 1 || port > 65535)
      return { error: `"${item.slice(0, 80)}" is not host:port (a port from 1 to 65535)` };
    nodes.push({ host: (match[1] ?? match[2])!, port });
  }
  return nodes;
}

/** What the URL contributes to every cluster node: credentials and TLS. */
function nodeCredentials(url: string): RedisOptions {
  const parsed = new URL(url);
  return {
    ...(parsed.username && { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password && { password: decodeURIComponent(parsed.password) }),
    ...(parsed.protocol === 'rediss:' && { tls: {} }),
  };
}

/** Plain options → the cluster's: queueing and laziness are the cluster's, the rest each node's. */
function clusterOptions(options: RedisOptions, nodeBase: RedisOptions): ClusterOptions {
  // Where each node is comes from the cluster itself, not from options.
  const {
    lazyConnect,
    enableOfflineQueue,
    retryStrategy,
    host: _h,
    port: _p,
    path: _s,
    ...perNode
  } = options;
  return {
    lazyConnect,
    enableOfflineQueue: enableOfflineQueue ?? true,
    // Without one, a cluster whose every node is down retries forever; with the caller's own
    // (`() => null`: fail at once) the cluster gives up as a single connection would.
    clusterRetryStrategy: retryStrategy ?? ((times) => Math.min(100 * times, 2000)),
    redisOptions: { ...nodeBase, ...perNode },
  };
}

/** Opens a connection to `target` with ioredis `options` (lazy ones connect on `connect()`). */
export function openRedis(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  if (!target.cluster) return new Redis(target.url, options);
  return new Cluster([...target.cluster], clusterOptions(options, nodeCredentials(target.url)));
}

/** A new connection to the same Redis (or cluster) as `client`, with `options` over its own. */
export function duplicateRedis(client: RedisClient, options: RedisOptions = {}): RedisClient {
  if (client instanceof Redis) return client.duplicate(options);
  return client.duplicate(undefined, clusterOptions(options, client.options.redisOptions ?? {}));
}

/** True for a cluster connection. */
export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/**
 * The connection to the node that owns `key`'s slot: the client itself for a single Redis, the
 * cluster's own connection to the slot's master otherwise (for keyless commands about that node,
 * or to `duplicate()` for a blocking reader of its own).
 */
export async function slotOwner(client: RedisClient, key: string): Promise<Redis> {
  if (client instanceof Redis) return client;
  const slot = Number(await client.cluster('KEYSLOT', key));
  const owner = client.slots[slot]?.[0];
  const node = client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
  if (!node) throw new Error(`no connected master serves slot ${slot} (of ${key})`);
  return node;
}

/** The masters to check settings on: the server itself, or every master of the cluster. */
export function masters(client: RedisClient): Redis[] {
  return client instanceof Redis ? [client] : client.nodes('master');
}

/** How a connection can be opened again elsewhere (a worker thread): plain, cloneable data. */
export interface ConnectionSpec {
  /** Seed nodes, in cluster mode. */
  nodes?: RedisNode[];
  /** The server's options, or each cluster node's. */
  options: RedisOptions;
}

/** TLS options as they can cross to a thread: functions (custom checks) cannot, and are dropped. */
function cloneable(tls: RedisOptions['tls']): RedisOptions['tls'] {
  if (!tls) return undefined;
  return Object.fromEntries(Object.entries(tls).filter(([, v]) => typeof v !== 'function'));
}

/** The spec of an open connection (server, credentials, database, TLS). */
export function connectionSpec(client: RedisClient): ConnectionSpec {
  if (client instanceof Redis) {
    const { host, port, path, username, password, db, tls } = client.options;
    return { options: { host, port, path, username, password, db, tls: cloneable(tls) } };
  }
  const { username, password, tls } = client.options.redisOptions ?? {};
  const options: RedisOptions = { username, password, tls: cloneable(tls) };
  const nodes = client.nodes('master').map((n) => ({ host: n.options.host!, port: n.options.port! }));
  return { nodes, options };
}

/** Opens a connection from a spec, with `options` over it. */
export function openFromSpec(spec: ConnectionSpec, options: RedisOptions = {}): RedisClient {
  if (!spec.nodes) return new Redis({ ...spec.options, ...options });
  return new Cluster(spec.nodes, clusterOptions(options, spec.options));
}

/** The target for logs: the URL without its password, or the cluster's seed nodes. */
export function describeTarget(target: RedisTarget): string {
  if (target.cluster) return `cluster ${target.cluster.map((n) => `${n.host}:${n.port}`).join(',')}`;
  return target.url.replace(/\/\/[^@]*@/, '//***@');
}
