/**
 * Reaching Redis at start: a probe that tells a passing outage (refused, at `maxclients`, not up
 * yet) from a configuration that can never work (a database index out of range, a wrong
 * password), and a wait that retries the first with backoff while saying so in the log.
 */
import type { Logger } from 'pino';
import { ValidationError } from './errors.ts';
import { describeTarget, isCluster, openRedis, type RedisClient, type RedisTarget } from './redis-client.ts';

/** What a probe found. */
export type RedisProbe = { ok: true } | { ok: false; permanent: boolean; reason: string };

const PERMANENT = /DB index is out of range|invalid DB index|WRONGPASS|NOAUTH|invalid password|NOPERM/i;

/** The database index of a Redis URL (`/3`), 0 when none; throws on a path that is not one. */
export function redisDatabase(url: string): number {
  const path = new URL(url).pathname.replace(/^\//, '');
  if (path === '') return 0;
  if (!/^\d{1,5}$/.test(path)) {
    throw new ValidationError(`REDIS_URL: "/${path}" is not a database index (use /0, /1, …)`, [
      { path: 'REDIS_URL', message: 'the path must be a database index' },
    ]);
  }
  return Number(path);
}

/**
 * One connection attempt, PING and the URL's `SELECT`, within `timeoutMs`; for a cluster, also
 * that its state is `ok` (every slot served).
 */
export async function probeRedis(target: RedisTarget | string, timeoutMs = 1000): Promise<RedisProbe> {
  if (typeof target === 'string') target = { url: target };
  const db = target.cluster ? 0 : redisDatabase(target.url);
  const client = openRedis(target, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    // ioredis only emits a failed SELECT as an 'error' event and carries on in database 0.
    db: 0,
  });
  let lastError: Error | undefined;
  client.on('error', (err: Error & { lastNodeError?: Error }) => {
    lastError = err.lastNodeError ?? err;
  });
  // A cluster reports a node's refusal (a wrong password) only here, then "None of startup nodes
  // is available": keep the node's reason, so a bad password is not retried for ever.
  client.on('node error', (err: Error) => {
    lastError = err;
  });
  try {
    await client.connect();
    await client.ping();
    if (db !== 0) await client.select(db);
    if (isCluster(client)) {
      const state = /cluster_state:(\w+)/.exec(String(await client.cluster('INFO')))?.[1];
      if (state !== 'ok')
        return { ok: false, permanent: false, reason: `cluster_state is ${state ?? 'unknown'}` };
    }
    return { ok: true };
  } catch (err) {
    const reason = ((lastError ?? err) as Error).message || String(err);
    const message = (err as Error).message ?? '';
    const permanent = PERMANENT.test(message) || PERMANENT.test(reason);
    return {
      ok: false,
      permanent,
      reason: permanent && !PERMANENT.test(message) ? reason : message || reason,
    };
  } finally {
    client.disconnect();
  }
}

/** The error for a Redis configuration that retrying cannot fix. */
function misconfigured(target: RedisTarget, reason: string): ValidationError {
  const hint = /DB index/i.test(reason)
    ? `database ${redisDatabase(target.url)} does not exist on this Redis (see its "databases" setting)`
    : 'Redis refused the credentials';
  return new ValidationError(`REDIS_URL ${describeTarget(target)}: ${hint} (${reason})`, [
    { path: 'REDIS_URL', message: hint },
  ]);
}

/** Backoff of the wait: doubling from `initialMs` up to `maxMs`. */
export interface RedisWaitOptions {
  logger: Logger;
  /** @defaultValue 250 */
  initialMs?: number;
  /** @defaultValue 10_000 */
  maxMs?: number;
}

/**
 * Resolves once Redis at `url` answers; retries a passing outage for as long as it lasts, with
 * one log line per attempt, and throws at once for a configuration that can never work.
 */
export async function waitForRedis(target: RedisTarget | string, options: RedisWaitOptions): Promise<void> {
  if (typeof target === 'string') target = { url: target };
  const { logger, initialMs = 250, maxMs = 10_000 } = options;
  let delay = initialMs;
  for (let attempt = 1; ; attempt++) {
    const probe = await probeRedis(target);
    if (probe.ok) return;
    if (probe.permanent) throw misconfigured(target, probe.reason);
    logger.warn(
      { attempt, retryInMs: delay, reason: probe.reason },
      `Redis at ${describeTarget(target)} is not reachable; retrying`,
    );
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, maxMs);
  }
}

/**
 * Logs a long-lived connection's errors once per outage (ioredis reconnects by itself, with
 * backoff; an error per attempt would flood the log) and its recovery.
 */
export function logConnectionErrors(redis: RedisClient, logger: Logger, name: string): void {
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    logger.warn({ err: err.message, connection: name }, 'Redis connection lost; reconnecting');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info({ connection: name }, 'Redis connection restored');
  });
}
