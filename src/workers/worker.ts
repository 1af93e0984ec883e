/**
 * A Conveyor worker: BullMQ Workers on the step queue of each executor it serves, on the gate
 * queue and on the runs queue (run finalisers), plus the cancel watcher. `close()` waits for
 * running steps up to a grace period, then abandons them to stalled-job recovery.
 */
import { FlowProducer, Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';
import { QUEUES, type RunMeta } from '../flows/index.ts';
import type { Inventory } from '../inventory/index.ts';
import type { SecretKey } from '../secrets/index.ts';
import { bullPrefix, InventoryStore, RunStore, SecretStore } from '../store/index.ts';
import { CancelWatch } from './cancel-watch.ts';
import type { Executor } from './executor.ts';
import { createGateProcessor } from './gates.ts';
import { createInstanceProcessor } from './instance-processor.ts';
import { createRunFinalizer } from './run-finalizer.ts';
import { PlanCache } from './run-plan.ts';
import { createStepProcessor, type SecretSource } from './step-processor.ts';

/** What executors may use: the worker's inventory and secrets (the SSH executor resolves hosts). */
export interface WorkerServices {
  inventory: InventoryStore;
  secrets: SecretStore;
}

/** Options of a worker. */
export interface WorkerOptions {
  redisUrl: string;
  prefix: string;
  /** The executors, or a function that builds them from the worker's services. */
  executors: Executor[] | ((services: WorkerServices) => Executor[]);
  /** Hosts from the `CONVEYOR_INVENTORY` file. */
  inventoryFile?: Inventory;
  /** `CONVEYOR_SECRET_KEY`, to read secrets. */
  secretKey?: SecretKey;
  /** Steps each executor's queue runs at once. @defaultValue 8 */
  concurrency: number;
  /** BullMQ lock duration: a crashed worker's step is retried after about this long. @defaultValue 30000 */
  lockMs: number;
  /** How often stalled jobs are looked for. @defaultValue 15000 */
  stalledIntervalMs: number;
  /** How long `close()` waits for running steps. @defaultValue 30000 */
  shutdownGraceMs: number;
  /** Log cap per step attempt in bytes. @defaultValue 10 MiB */
  maxLogBytes: number;
  /** Outputs cap per step in bytes. @defaultValue 1 MiB */
  maxOutputBytes: number;
  /** Another source of secret values (default: the secrets store). */
  secrets?: SecretSource;
  logger: Logger;
}

/** A running worker. */
export interface ConveyorWorker {
  /** Executors served. */
  executors: string[];
  close(): Promise<void>;
}

/** Starts a worker; resolves once its BullMQ workers are connected. */
export async function startWorker(
  options: Partial<WorkerOptions> & Pick<WorkerOptions, 'redisUrl' | 'executors'>,
): Promise<ConveyorWorker> {
  const opts: WorkerOptions = {
    prefix: 'conveyor',
    concurrency: 8,
    lockMs: 30_000,
    stalledIntervalMs: 15_000,
    shutdownGraceMs: 30_000,
    maxLogBytes: 10 * 1024 * 1024,
    maxOutputBytes: 1024 * 1024,
    logger: pino({ level: 'silent' }),
    ...options,
  };
  const logger = opts.logger;
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const prefix = bullPrefix(opts.prefix);
  const store = new RunStore(connection, opts.prefix);
  const plans = new PlanCache();
  const gateQueue = new Queue(QUEUES.gate, { connection, prefix });
  const runsQueue = new Queue(QUEUES.run, { connection, prefix });
  const flows = new FlowProducer({ connection, prefix });
  const cancels = new CancelWatch(connection, store, logger);
  const services: WorkerServices = {
    inventory: new InventoryStore(connection, opts.prefix, opts.inventoryFile),
    secrets: new SecretStore(connection, opts.prefix, opts.secretKey),
  };
  const list = typeof opts.executors === 'function' ? opts.executors(services) : opts.executors;
  if (list.length === 0) throw new RangeError('a worker needs at least one executor');
  const executors = new Map(list.map((e) => [e.name, e]));

  const deps = {
    store,
    plans,
    executors,
    gateQueue,
    flows,
    cancels,
    secrets: opts.secrets ?? services.secrets,
    inventory: services.inventory,
    logger,
    limits: { maxLogBytes: opts.maxLogBytes, maxOutputBytes: opts.maxOutputBytes },
    loadMeta: async (runId: string) => (await Job.fromId<RunMeta>(runsQueue, runId))?.data,
  };
  const processStep = createStepProcessor(deps, createInstanceProcessor(deps));
  const common = {
    connection,
    prefix,
    lockDuration: opts.lockMs,
    stalledInterval: opts.stalledIntervalMs,
    // A step interrupted by a worker crash runs again; a second crash in a row fails it.
    maxStalledCount: 2,
  };
  const workers = [
    ...[...executors.keys()].map(
      (name) => new Worker(QUEUES.step(name), processStep, { ...common, concurrency: opts.concurrency }),
    ),
    new Worker(QUEUES.gate, createGateProcessor(store), { ...common, concurrency: 100 }),
    new Worker(QUEUES.run, createRunFinalizer(store, plans), { ...common, concurrency: 20 }),
  ];
  for (const worker of workers) {
    worker.on('error', (err) => logger.error({ err, queue: worker.name }, 'worker error'));
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  logger.info({ executors: [...executors.keys()], concurrency: opts.concurrency }, 'worker ready');

  return {
    executors: [...executors.keys()],
    async close() {
      const graceful = Promise.all(workers.map((w) => w.close()));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        graceful.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), opts.shutdownGraceMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        logger.warn(
          { graceMs: opts.shutdownGraceMs },
          'steps still running after the grace period: leaving them to recovery',
        );
        await Promise.all(workers.map((w) => w.close(true)));
      }
      await cancels.close();
      await Promise.all(list.map((e) => e.close()));
      await Promise.all([gateQueue.close(), runsQueue.close(), flows.close()]);
      connection.disconnect();
    },
  };
}
