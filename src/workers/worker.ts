/**
 * A Conveyor worker: BullMQ Workers on the step queue of each executor it serves, on the gate
 * queue and on the runs queue (run finalisers), plus the cancel watcher. `close()` stops taking
 * steps, waits for running ones up to a grace period, then stops them and hands them back at
 * once so another worker runs them as a new attempt.
 */
import { FlowProducer, Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';
import { QUEUES, type RunMeta, type StepJobData } from '../flows/index.ts';
import type { Inventory } from '../inventory/index.ts';
import type { SecretKey } from '../secrets/index.ts';
import { bullPrefix, InventoryStore, RunStore, SecretStore, WorkerRegistry } from '../store/index.ts';
import { CancelWatch } from './cancel-watch.ts';
import type { Executor } from './executor.ts';
import { createGateProcessor } from './gates.ts';
import { startHeartbeat } from './heartbeat.ts';
import { createInstanceProcessor } from './instance-processor.ts';
import { onJobFailed } from './reconciler.ts';
import { createRunFinalizer } from './run-finalizer.ts';
import { PlanCache } from './run-plan.ts';
import type { JobLookup, SecretSource, StepProcessorDeps } from './step-deps.ts';
import { createStepProcessor } from './step-processor.ts';

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
  /** How long `close()` waits for running steps before handing them back. @defaultValue 30000 */
  shutdownGraceMs: number;
  /** Times a step's worker may die under it; the next time the step fails. @defaultValue 2 */
  maxInterruptions: number;
  /** Log cap per step attempt in bytes. @defaultValue 10 MiB */
  maxLogBytes: number;
  /** Outputs cap per step in bytes. @defaultValue 1 MiB */
  maxOutputBytes: number;
  /** Another source of secret values (default: the secrets store). */
  secrets?: SecretSource;
  /** `WORKER_TAGS`, said in the heartbeat. */
  tags?: string[];
  /** How often the worker's heartbeat is written (it expires after three). @defaultValue 5000 */
  heartbeatMs?: number;
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
    maxInterruptions: 2,
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
  const cancels = new CancelWatch(connection, store, logger, {
    onRunEnded: (runId) => {
      for (const executor of executors.values()) {
        executor
          .runEnded?.(runId)
          .catch((err) => logger.warn({ err, runId }, "could not drop a run's files"));
      }
    },
  });
  const services: WorkerServices = {
    inventory: new InventoryStore(connection, opts.prefix, opts.inventoryFile),
    secrets: new SecretStore(connection, opts.prefix, opts.secretKey),
  };
  const list = typeof opts.executors === 'function' ? opts.executors(services) : opts.executors;
  if (list.length === 0) throw new RangeError('a worker needs at least one executor');
  const executors = new Map(list.map((e) => [e.name, e]));
  const stepQueues = new Map<string, Queue>();
  const lookupJob: JobLookup = async (executor, jobId) => {
    let queue = stepQueues.get(executor);
    if (!queue) {
      queue = new Queue(QUEUES.step(executor), { connection, prefix });
      stepQueues.set(executor, queue);
    }
    const job = await Job.fromId(queue, jobId);
    if (!job) return undefined;
    return { state: await job.getState(), failedReason: job.failedReason, stalls: job.stalledCounter };
  };

  const deps: StepProcessorDeps = {
    store,
    plans,
    executors,
    gateQueue,
    flows,
    cancels,
    secrets: opts.secrets ?? services.secrets,
    inventory: services.inventory,
    logger,
    limits: {
      maxLogBytes: opts.maxLogBytes,
      maxOutputBytes: opts.maxOutputBytes,
      maxInterruptions: opts.maxInterruptions,
    },
    loadMeta: async (runId: string) => (await Job.fromId<RunMeta>(runsQueue, runId))?.data,
    lookupJob,
  };
  const processStep = createStepProcessor(deps, createInstanceProcessor(deps));
  const common = {
    connection,
    prefix,
    lockDuration: opts.lockMs,
    stalledInterval: opts.stalledIntervalMs,
    // Our processor counts interruptions itself (start-step.lua) and fails the step with the
    // reason; BullMQ's own limit is only a backstop for a worker that dies before the count.
    maxStalledCount: opts.maxInterruptions + 2,
  };
  const heartbeat = await startHeartbeat(new WorkerRegistry(connection, store.keys), {
    executors: [...executors.keys()],
    tags: opts.tags ?? [],
    concurrency: opts.concurrency,
    intervalMs: opts.heartbeatMs,
    logger,
  });
  const stepWorkers = [...executors.keys()].map(
    (name) =>
      new Worker(QUEUES.step(name), heartbeat.track(name, processStep), {
        ...common,
        concurrency: opts.concurrency,
      }),
  );
  const workers = [
    ...stepWorkers,
    new Worker(QUEUES.gate, createGateProcessor(store), { ...common, concurrency: 100 }),
    new Worker(QUEUES.run, createRunFinalizer(deps), { ...common, concurrency: 20 }),
  ];
  for (const worker of workers) {
    worker.on('error', (err) => {
      // BullMQ only reports a lost lock: stop that attempt, another worker owns the job now.
      const lost = /could not renew lock for job (\S+)/.exec(err.message)?.[1];
      if (lost) {
        worker.cancelJob(lost, 'lock_lost');
        logger.warn({ jobId: lost, queue: worker.name }, 'lost a job lock: stopping its attempt');
      } else logger.error({ err, queue: worker.name }, 'worker error');
    });
  }
  for (const worker of stepWorkers) {
    worker.on('failed', (job) => {
      onJobFailed(deps, job as Job<StepJobData> | undefined).catch((err) =>
        logger.warn({ err, jobId: job?.id }, 'could not reconcile a failed job'),
      );
    });
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  for (const executor of list) {
    const about = await executor.describe?.();
    if (about) logger.info({ executor: executor.name, ...about.details }, 'executor ready');
    if (about?.warning) logger.warn({ executor: executor.name }, about.warning);
    await executor.sweep?.((ids) => store.runsOver(ids)).catch((err) => logger.warn({ err }, 'sweep failed'));
  }
  logger.info({ executors: [...executors.keys()], concurrency: opts.concurrency }, 'worker ready');

  return {
    executors: [...executors.keys()],
    async close() {
      // BullMQ's close stops fetching at once, then waits for the active jobs without a limit.
      const graceful = Promise.all(workers.map((w) => w.close()));
      if (!(await settledWithin(graceful, opts.shutdownGraceMs))) {
        logger.warn(
          { graceMs: opts.shutdownGraceMs },
          'steps still running after the grace period: handing them back',
        );
        for (const worker of stepWorkers) worker.cancelAllJobs('shutdown');
        // The attempts stop within a second or so; past a further grace, give up on them.
        if (!(await settledWithin(graceful, 5000))) await Promise.all(workers.map((w) => w.close(true)));
      }
      await heartbeat.stop();
      await cancels.close();
      await Promise.all(list.map((e) => e.close()));
      await Promise.all([
        gateQueue.close(),
        runsQueue.close(),
        flows.close(),
        ...[...stepQueues.values()].map((q) => q.close()),
      ]);
      connection.disconnect();
    },
  };
}

/** Resolves true when `promise` settles within `ms`, false when the time runs out first. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return done;
}
