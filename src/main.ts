/**
 * Entry points: `standalone` (API and worker in one process, the embedded default), `api`,
 * `worker`. Configuration comes from the environment, read once here.
 */
import type { ChildProcess } from 'node:child_process';
import pino from 'pino';
import { startApi } from './api/server.ts';
import { type Config, loadConfig } from './config.ts';
import { UnavailableError } from './errors.ts';
import { redisAnswers, startPrivateRedis } from './standalone-redis.ts';
import type { Executor } from './workers/executor.ts';
import { LocalExecutor } from './workers/local/index.ts';
import { startWorker } from './workers/worker.ts';

type Mode = 'standalone' | 'api' | 'worker';

/** Executors this worker serves (WORKER_EXECUTORS); unknown names are an error. */
async function createExecutors(config: Config, logger: pino.Logger): Promise<Executor[]> {
  const out: Executor[] = [];
  for (const name of config.WORKER_EXECUTORS) {
    if (name === 'local') out.push(new LocalExecutor());
    else if (name === 'ssh' || name === 'vm')
      logger.warn({ executor: name }, 'executor not available in this build yet; skipping');
    else throw new RangeError(`WORKER_EXECUTORS: unknown executor "${name}" (known: local, ssh, vm)`);
  }
  return out;
}

/** Runs one mode until SIGINT/SIGTERM. */
export async function main(mode: Mode, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadConfig(env);
  const logger = pino({ level: config.LOG_LEVEL });
  let redisProcess: ChildProcess | undefined;
  if (!(await redisAnswers(config.REDIS_URL))) {
    if (mode === 'standalone' && config.redisUrlIsDefault) {
      logger.info(
        { dataDir: `${config.CONVEYOR_DATA_DIR}/redis` },
        'no Redis at the default URL: starting a private redis-server',
      );
      redisProcess = await startPrivateRedis(config.REDIS_URL, config.CONVEYOR_DATA_DIR);
    } else {
      throw new UnavailableError(`Redis at ${config.REDIS_URL} does not answer`);
    }
  } else {
    logger.info({ redis: config.REDIS_URL.replace(/\/\/[^@]*@/, '//***@') }, 'using Redis');
  }

  const closers: Array<() => Promise<void>> = [];
  if (mode !== 'worker') {
    const api = await startApi({
      redisUrl: config.REDIS_URL,
      prefix: config.CONVEYOR_PREFIX,
      port: config.PORT,
      logger,
    });
    closers.push(() => api.close());
    logger.info({ port: api.port }, `API listening on http://127.0.0.1:${api.port}`);
    if (!config.CONVEYOR_API_TOKENS)
      logger.warn('CONVEYOR_API_TOKENS is not set: the API accepts every request');
  }
  if (mode !== 'api') {
    const worker = await startWorker({
      redisUrl: config.REDIS_URL,
      prefix: config.CONVEYOR_PREFIX,
      executors: await createExecutors(config, logger),
      concurrency: config.WORKER_CONCURRENCY,
      lockMs: config.WORKER_LOCK_MS,
      stalledIntervalMs: config.WORKER_STALLED_INTERVAL_MS,
      shutdownGraceMs: config.WORKER_SHUTDOWN_GRACE_MS,
      logger,
    });
    closers.push(() => worker.close());
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    for (const close of closers.reverse())
      await close().catch((err) => logger.error({ err }, 'close failed'));
    redisProcess?.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
