/**
 * Entry points: `standalone` (API and worker in one process, the embedded default), `api`,
 * `worker`. Configuration comes from the environment, read once here.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { type ApiToken, checkExposure, parseTokens } from './api/auth/index.ts';
import { startApi } from './api/server.ts';
import { type Config, loadConfig } from './config.ts';
import { withEnvFile } from './env-file.ts';
import { ValidationError } from './errors.ts';
import { type Inventory, loadInventoryFile } from './inventory/index.ts';
import { createLogger } from './logger.ts';
import { describeTarget, openRedis, type RedisTarget } from './redis-client.ts';
import { checkRedisSettings } from './redis-settings.ts';
import { probeRedis, waitForRedis } from './redis-wait.ts';
import { parseSecretKey, type SecretKey } from './secrets/index.ts';
import { startPrivateRedis } from './standalone-redis.ts';
import { parseSecretList } from './triggers/index.ts';
import type { Executor } from './workers/executor.ts';
import { LocalExecutor, resolveRunAs, Workspaces } from './workers/local/index.ts';
import { setLongTimeout } from './workers/long-timer.ts';
import { inventoryResolver, KnownHosts, SshExecutor } from './workers/ssh/index.ts';
import { VmExecutor } from './workers/vm/index.ts';
import { startWorker, type WorkerServices } from './workers/worker.ts';

type Mode = 'standalone' | 'api' | 'worker';

/** How long past WORKER_SHUTDOWN_GRACE_MS a stopping process waits before exiting anyway. */
export const SHUTDOWN_MARGIN_MS = 10_000;

/** Files and keys named by the configuration, read once at start. */
interface Resources {
  inventoryFile?: Inventory;
  secretKey?: SecretKey;
  knownHosts?: KnownHosts;
  tokens: ApiToken[];
}

async function readTokensFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ValidationError(`CONVEYOR_API_TOKENS_FILE: cannot read ${path}: ${(err as Error).message}`, [
      { path: 'CONVEYOR_API_TOKENS_FILE', message: 'the file cannot be read' },
    ]);
  }
}

async function loadResources(config: Config): Promise<Resources> {
  const tokens = [
    ...parseTokens(config.CONVEYOR_API_TOKENS ?? '', 'CONVEYOR_API_TOKENS'),
    ...(config.CONVEYOR_API_TOKENS_FILE
      ? parseTokens(await readTokensFile(config.CONVEYOR_API_TOKENS_FILE), 'CONVEYOR_API_TOKENS_FILE')
      : []),
  ];
  return {
    tokens,
    inventoryFile: config.CONVEYOR_INVENTORY ? await loadInventoryFile(config.CONVEYOR_INVENTORY) : undefined,
    secretKey: config.CONVEYOR_SECRET_KEY ? parseSecretKey(config.CONVEYOR_SECRET_KEY) : undefined,
    knownHosts: config.CONVEYOR_KNOWN_HOSTS
      ? KnownHosts.parse(await readFile(config.CONVEYOR_KNOWN_HOSTS, 'utf8'))
      : undefined,
  };
}

/** Executors this worker serves (WORKER_EXECUTORS); unknown names are an error. */
function createExecutors(config: Config, resources: Resources, services: WorkerServices): Executor[] {
  return config.WORKER_EXECUTORS.map((name) => {
    if (name === 'local') {
      const runAs = config.WORKER_RUN_AS ? resolveRunAs(config.WORKER_RUN_AS) : undefined;
      const workspaces = new Workspaces({
        ...(config.WORKER_WORKSPACE_DIR && { baseDir: config.WORKER_WORKSPACE_DIR }),
        keep: config.CONVEYOR_KEEP_WORKSPACES,
        runAs,
      });
      return new LocalExecutor({ workspaces, runAs, launcher: config.WORKER_LAUNCHER });
    }
    if (name === 'ssh') {
      return new SshExecutor({
        knownHosts: resources.knownHosts,
        onTrust: (host, keyLine) => services.inventory.recordHostKey(host, keyLine),
        resolveHost: inventoryResolver(services, { agentSocket: config.SSH_AUTH_SOCK }),
      });
    }
    if (name === 'vm')
      return new VmExecutor({
        sandbox: config.WORKER_VM_SANDBOX,
        poolSize: config.WORKER_VM_POOL,
        poolMax: config.WORKER_VM_POOL_MAX,
      });
    throw new RangeError(`WORKER_EXECUTORS: unknown executor "${name}" (known: local, ssh, vm)`);
  });
}

/** The eviction and AOF warnings (redis-settings.ts), on a short-lived connection of their own. */
async function checkSettings(target: RedisTarget, logger: ReturnType<typeof createLogger>): Promise<void> {
  const client = openRedis(target, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    await checkRedisSettings(client, logger);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not check the Redis settings');
  } finally {
    client.disconnect();
  }
}

/** Runs one mode until SIGINT/SIGTERM. */
export async function main(mode: Mode, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const envFile = withEnvFile(env);
  const config = loadConfig(envFile.env);
  const logger = createLogger(config.LOG_LEVEL);
  if (envFile.file) {
    const { file, loaded, overridden } = envFile;
    logger.info(
      { file, loaded, keptFromEnvironment: overridden },
      `read ${loaded.length} variables from ${file}`,
    );
  }
  const resources = await loadResources(config);
  // Refuse an exposed API without tokens before touching Redis.
  if (mode !== 'worker') checkExposure(config.HOST, resources.tokens.length, config.CONVEYOR_ALLOW_ANONYMOUS);
  let redisProcess: ChildProcess | undefined;
  // Handlers first: a SIGTERM while the parts start still closes what started, then exits.
  const closers: Array<() => Promise<void>> = [];
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Closing waits on Redis; with Redis gone it would wait for ever. Past the grace and the
    // hand-back, exit anyway: steps die with the worker (parent-death signal), jobs are recovered.
    setLongTimeout(() => {
      logger.error('shutdown did not finish in time (Redis unreachable?): exiting');
      process.exit(1);
    }, config.WORKER_SHUTDOWN_GRACE_MS + SHUTDOWN_MARGIN_MS);
    for (const close of closers.reverse())
      await close().catch((err) => logger.error({ err }, 'close failed'));
    redisProcess?.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  const probe = await probeRedis(config.redis);
  // With REDIS_CLUSTER_NODES set, Redis is the cluster: never a private server in its place.
  const mayStartRedis = mode === 'standalone' && config.redisUrlIsDefault && !config.redis.cluster;
  if (!probe.ok && !probe.permanent && mayStartRedis) {
    logger.info(
      { dataDir: `${config.CONVEYOR_DATA_DIR}/redis` },
      'no Redis at the default URL: starting a private redis-server',
    );
    redisProcess = await startPrivateRedis(config.REDIS_URL, config.CONVEYOR_DATA_DIR);
  } else {
    // A passing outage (Redis restarting, at maxclients) is waited out with backoff, not fatal.
    if (!probe.ok) await waitForRedis(config.redis, { logger });
    logger.info({ redis: describeTarget(config.redis) }, 'using Redis');
    await checkSettings(config.redis, logger);
  }
  if (mode !== 'worker') {
    const api = await startApi({
      redisUrl: config.REDIS_URL,
      redisCluster: config.redis.cluster,
      prefix: config.CONVEYOR_PREFIX,
      port: config.PORT,
      host: config.HOST,
      allowAnonymous: config.CONVEYOR_ALLOW_ANONYMOUS,
      corsOrigins: config.CONVEYOR_CORS_ORIGINS,
      rateLimit: config.CONVEYOR_RATE_LIMIT ?? undefined,
      logger,
      retentionSeconds: Math.max(1, Math.round(config.CONVEYOR_RETENTION_DAYS * 86_400)),
      webhookSecrets: parseSecretList(config.CONVEYOR_WEBHOOK_SECRET),
      ...resources,
    });
    closers.push(() => api.close());
  }
  if (mode !== 'api') {
    const worker = await startWorker({
      redisUrl: config.REDIS_URL,
      redisCluster: config.redis.cluster,
      prefix: config.CONVEYOR_PREFIX,
      executors: (services) => createExecutors(config, resources, services),
      inventoryFile: resources.inventoryFile,
      secretKey: resources.secretKey,
      concurrency: config.WORKER_CONCURRENCY,
      tags: config.WORKER_TAGS,
      tagsOnly: config.WORKER_TAGS_ONLY,
      heartbeatMs: config.WORKER_HEARTBEAT_MS,
      healthPort: config.WORKER_HEALTH_PORT,
      healthHost: config.WORKER_HEALTH_HOST,
      reconcileIntervalMs: config.WORKER_RECONCILE_INTERVAL_MS,
      lockMs: config.WORKER_LOCK_MS,
      stalledIntervalMs: config.WORKER_STALLED_INTERVAL_MS,
      shutdownGraceMs: config.WORKER_SHUTDOWN_GRACE_MS,
      logger,
    });
    closers.push(() => worker.close());
  }
}
