/**
 * Environment → typed configuration, read once at start (never at import time) and validated
 * with zod so a bad value is a clear message naming the variable.
 */
import { z } from 'zod';
import { parseCorsOrigins, parseRateLimit } from './api/middleware/index.ts';
import { cliSchema } from './config-cli.ts';
import { FILE_VARIABLES, readCredentialFiles, withRedisPassword } from './config-credentials.ts';
import { ValidationError } from './errors.ts';
import { MAX_TAGS, TAG } from './flows/routing.ts';
import { parseClusterNodes, type RedisTarget } from './redis-client.ts';

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

const list = (value: string) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** A parser's `{ error }` becomes a zod issue on the variable. */
const parsedBy =
  <T>(parse: (text: string) => T | { error: string }) =>
  (text: string, ctx: z.RefinementCtx): T => {
    const out = parse(text);
    if (out !== null && typeof out === 'object' && 'error' in out) {
      ctx.addIssue({ code: 'custom', message: out.error });
      return z.NEVER;
    }
    return out as T;
  };

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Address the API binds; anything but loopback needs tokens or CONVEYOR_ALLOW_ANONYMOUS. */
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  REDIS_URL: z.string().url().default(DEFAULT_REDIS_URL),
  /**
   * `host:port,…` of a Redis Cluster's nodes (a few are enough: the rest are discovered); set =
   * cluster mode, with REDIS_URL's credentials and scheme (`rediss:` = TLS) for every node.
   */
  REDIS_CLUSTER_NODES: z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    z.string().transform(parsedBy(parseClusterNodes)).optional(),
  ),
  CONVEYOR_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." or "-", at most 64')
    .default('conveyor'),
  /** `role:token` pairs, comma-separated; a bare token is `admin`. */
  CONVEYOR_API_TOKENS: z.string().optional(),
  /** A file of `role:token` pairs, one a line or comma-separated (read at start). */
  CONVEYOR_API_TOKENS_FILE: z.string().optional(),
  /** Allow a non-loopback HOST without tokens: anyone who reaches it can run commands. */
  CONVEYOR_ALLOW_ANONYMOUS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  CONVEYOR_SECRET_KEY: z.string().optional(),
  CONVEYOR_WEBHOOK_SECRET: z.string().optional(),
  CONVEYOR_INVENTORY: z.string().optional(),
  CONVEYOR_KNOWN_HOSTS: z.string().optional(),
  CONVEYOR_DATA_DIR: z.string().default('.conveyor'),
  /**
   * Days a finished run (record, events, logs, index entries, BullMQ jobs) is kept; decimals
   * allowed (`0.5` = 12 hours), at least one second, at most ten years.
   */
  CONVEYOR_RETENTION_DAYS: z.coerce
    .number()
    .min(1 / 86_400, 'must be at least one second (1/86400 days)')
    .max(3650, 'must be at most 3650 days')
    .default(14),
  /** The worker's ssh-agent, for hosts with `auth: { type: agent }`. */
  SSH_AUTH_SOCK: z.string().optional(),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(8),
  WORKER_EXECUTORS: z.string().default('local,ssh,vm').transform(list),
  /** Tags this worker serves (`runsOn`), comma-separated. */
  WORKER_TAGS: z
    .string()
    .default('')
    .transform(list)
    .refine((tags) => tags.every((t) => TAG.test(t)), 'each tag must match [a-z0-9][a-z0-9_.-]{0,31}')
    .refine((tags) => tags.length <= MAX_TAGS, `at most ${MAX_TAGS} tags`)
    .transform((tags) => [...new Set(tags)].sort()),
  /** Serve tagged steps only: no untagged step runs on this worker. */
  WORKER_TAGS_ONLY: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** Where each run's workspace lives (default: `conveyor-workspaces` under the system temp dir). */
  WORKER_WORKSPACE_DIR: z.string().min(1).optional(),
  /** Keep runs' workspaces after they end (for debugging). */
  CONVEYOR_KEEP_WORKSPACES: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** Run local steps as this user (name, uid or uid:gid); the worker must be root. */
  WORKER_RUN_AS: z.string().min(1).optional(),
  /** How local steps are launched: `auto` (conveyor-launch when found, else the chain) or `chain`. */
  WORKER_LAUNCHER: z.enum(['auto', 'chain']).default('auto'),
  /** Sandbox VM steps with bubblewrap; `false` on hosts without it (sandboxed steps are then refused). */
  WORKER_VM_SANDBOX: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /** Pre-spawned function VMs per worker. */
  WORKER_VM_POOL: z.coerce.number().int().min(0).max(64).default(2),
  /** Most function VMs the pool grows to under load (ready or starting); default max(8, WORKER_VM_POOL). */
  WORKER_VM_POOL_MAX: z.coerce.number().int().min(0).max(64).optional(),
  /** How long a job lock lives (renewed at half); a killed worker's step comes back after it expires. */
  WORKER_LOCK_MS: z.coerce.number().int().min(1000).default(8000),
  /** How often expired locks are looked for: recovery takes at most lock + interval. */
  WORKER_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).default(4000),
  /** How often a worker writes its heartbeat (live for three intervals). */
  WORKER_HEARTBEAT_MS: z.coerce.number().int().min(200).max(60_000).default(2000),
  /** Port of the worker's `/healthz` and `/readyz` (0: any free port); unset: no health port. */
  WORKER_HEALTH_PORT: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.coerce.number().int().min(0).max(65535).optional(),
  ),
  /** Address of the worker's health port (`0.0.0.0` in containers, for probes). */
  WORKER_HEALTH_HOST: z.string().trim().min(1).default('127.0.0.1'),
  /** How often one worker of many reconciles run records with their queues. */
  WORKER_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(500).default(15_000),
  /** Seconds a stopping worker waits for running steps before abandoning them to recovery. */
  WORKER_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
  /** A `.env` file to read instead of `./.env` (read by main.ts before this schema; see env-file.ts). */
  CONVEYOR_ENV_FILE: z.string().optional(),
  /** Origins a browser page may call the API from (`*`: any); unset = CORS off. */
  CONVEYOR_CORS_ORIGINS: z.string().transform(parsedBy(parseCorsOrigins)).optional(),
  /** Requests per token (or client address): `600/min` (default), `10/s`, `0` = off. */
  CONVEYOR_RATE_LIMIT: z.string().default('600/min').transform(parsedBy(parseRateLimit)),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/**
 * Every variable the configuration reads: the schema's, plus those `config-credentials.ts` folds
 * in (`<NAME>_FILE`, `REDIS_PASSWORD`). The README's configuration table must list exactly these
 * (a test compares them).
 */
export const CONFIG_VARIABLES: readonly string[] = [
  ...Object.keys(schema.shape),
  ...Object.keys(cliSchema.shape).filter((name) => !(name in schema.shape)),
  ...FILE_VARIABLES.map((name) => `${name}_FILE`),
  'REDIS_PASSWORD',
];

/** The validated configuration. */
export type Config = z.output<typeof schema> & {
  /** True when REDIS_URL was not set, so standalone mode may start a private redis-server. */
  redisUrlIsDefault: boolean;
  /** Where Redis is: REDIS_URL, or the cluster of REDIS_CLUSTER_NODES with REDIS_URL's credentials. */
  redis: RedisTarget;
};

/**
 * Reads and validates configuration from `env` (default `process.env`); credentials may come
 * from files (`CONVEYOR_SECRET_KEY_FILE`, `REDIS_URL_FILE`, `REDIS_PASSWORD_FILE`).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  env = readCredentialFiles(env);
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new ValidationError(
      `invalid configuration: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  const url = withRedisPassword(parsed.data.REDIS_URL, env.REDIS_PASSWORD);
  const cluster = parsed.data.REDIS_CLUSTER_NODES;
  // A cluster has database 0 only (SELECT is refused): a URL naming another would be ignored.
  if (cluster && !/^\/?0?$/.test(new URL(url).pathname)) {
    throw new ValidationError('invalid configuration: REDIS_URL: a Redis Cluster has no database index', [
      {
        path: 'REDIS_URL',
        message: 'with REDIS_CLUSTER_NODES, REDIS_URL may carry credentials only, no /db',
      },
    ]);
  }
  return {
    ...parsed.data,
    REDIS_URL: url,
    redisUrlIsDefault: !env.REDIS_URL || env.REDIS_URL === DEFAULT_REDIS_URL,
    redis: { url, ...(cluster && { cluster }) },
  };
}
