/**
 * A Conveyor worker: BullMQ Workers on the step queues it serves (each executor's, and each tag
 * set's within its tags: step-consumers.ts), sharing `concurrency` slots, on the gate queue and
 * on the runs queue (run finalisers), plus the cancel watcher, its heartbeat, the periodic
 * waiting check and record repair, and an optional health port. `close()` stops taking steps,
 * waits for running ones up to a grace period, then stops them and hands them back at once so
 * another worker runs them as a new attempt.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { FlowProducer, Job, Queue, Worker } from 'bullmq';
import pino, { type Logger } from 'pino';
import { allowDeepFlows } from '../flows/deep-flows.ts';
import { QUEUES, type RunMeta, type StepJobData } from '../flows/index.ts';
import type { Inventory } from '../inventory/index.ts';
import { openRedis, type RedisNode, type RedisTarget } from '../redis-client.ts';
import type { SecretKey } from '../secrets/index.ts';
import { bullPrefix, InventoryStore, RunStore, SecretStore, WorkerRegistry } from '../store/index.ts';
import { CancelWatch } from './cancel-watch.ts';
import type { Executor } from './executor.ts';
import { createGateProcessor } from './gates.ts';
import { createInstanceProcessor } from './instance-processor.ts';
import { setLongTimeout } from './long-timer.ts';
import { startMaintenance } from './maintenance.ts';
import { onJobFailed } from './reconciler.ts';
import { createRunFinalizer } from './run-finalizer.ts';
import { PlanCache } from './run-plan.ts';
import { Slots } from './slots.ts';
import { StepConsumers } from './step-consumers.ts';
import type { JobLookup, SecretSource, StepProcessorDeps } from './step-deps.ts';
import { createStepProcessor } from './step-processor.ts';

/**
 * How long one read of the inventory serves the worker: a step's fan-out and its SSH executor
 * look its host up within a millisecond or two of each other. A host changed through the API
 * is seen by every step that starts more than this long after the change.
 */
const INVENTORY_REUSE_MS = 5;

/** What executors may use: the worker's inventory and secrets (the SSH executor resolves hosts). */
export interface WorkerServices {
  inventory: InventoryStore;
  secrets: SecretStore;
}

/** Options of a worker. */
export interface WorkerOptions {
  /** Redis; in cluster mode only its credentials and scheme count. */
  redisUrl: string;
  /** `REDIS_CLUSTER_NODES`: seed nodes of a Redis Cluster (unset: the Redis at `redisUrl`). */
  redisCluster?: readonly RedisNode[];
  prefix: string;
  /** The executors, or a function that builds them from the worker's services. */
  executors: Executor[] | ((services: WorkerServices) => Executor[]);
  /** Hosts from the `CONVEYOR_INVENTORY` file. */
  inventoryFile?: Inventory;
  /** `CONVEYOR_SECRET_KEY`, to read secrets. */
  secretKey?: SecretKey;
  /** Steps this process runs at once, over every queue it serves. @defaultValue 8 */
  concurrency: number;
  /** `WORKER_TAGS`: the `runsOn` tags served. @defaultValue [] */
  tags: string[];
  /** `WORKER_TAGS_ONLY`: serve tagged steps only. @defaultValue false */
  tagsOnly: boolean;
  /** BullMQ lock duration: a crashed worker's step is retried after about this long. @defaultValue 8000 */
  lockMs: number;
  /** How often stalled jobs are looked for. @defaultValue 4000 */
  stalledIntervalMs: number;
  /** How often the heartbeat is written. @defaultValue 2000 */
  heartbeatMs: number;
  /** Port of `/healthz` and `/readyz` (0: any free one); undefined: none. */
  healthPort?: number;
  /** Address of the health port. @defaultValue '127.0.0.1' */
  healthHost: string;
  /** How often one worker of many reconciles records with queues. @defaultValue 15000 */
  reconcileIntervalMs: number;
  /** Runs and jobs younger than this are left to finish their writes. @defaultValue 10000 */
  reconcileGraceMs: number;
  /** How often one process of many flags steps no live worker serves. @defaultValue 2000 */
  waitingCheckMs: number;
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
  logger: Logger;
}

/** A running worker. */
export interface ConveyorWorker {
  /** This process's heartbeat id. */
  id: string;
  /** Executors served. */
  executors: string[];
  /** Step queues consumed now (more appear as runs ask for new tag sets). */
  queues(): string[];
  /** The health port, when one was asked for. */
  healthPort?: number;
  close(): Promise<void>;
}

/** Starts a worker; resolves once its BullMQ workers are connected. */
export async function startWorker(
  options: Partial<WorkerOptions> & Pick<WorkerOptions, 'redisUrl' | 'executors'>,
): Promise<ConveyorWorker> {
  const opts: WorkerOptions = {
    prefix: 'conveyor',
    concurrency: 8,
    tags: [],
    tagsOnly: false,
    lockMs: 8000,
    stalledIntervalMs: 4000,
    heartbeatMs: 2000,
    healthHost: '127.0.0.1',
    reconcileIntervalMs: 15_000,
    reconcileGraceMs: 10_000,
    waitingCheckMs: 2000,
    shutdownGraceMs: 30_000,
    maxInterruptions: 2,
    maxLogBytes: 10 * 1024 * 1024,
    maxOutputBytes: 1024 * 1024,
    logger: pino({ level: 'silent' }),
    ...options,
  };
  const logger = opts.logger;
  const id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const target: RedisTarget = { url: opts.redisUrl, cluster: opts.redisCluster };
  const connection = openRedis(target, { maxRetriesPerRequest: null });
  const prefix = bullPrefix(opts.prefix);
  const store = new RunStore(connection, opts.prefix, id);
  const registry = new WorkerRegistry(connection, opts.prefix, opts.heartbeatMs * 3);
  const plans = new PlanCache();
  const gateQueue = new Queue(QUEUES.gate, { connection, prefix });
  const runsQueue = new Queue(QUEUES.run, { connection, prefix });
  // Adds fan-out instances, and a group's next run when a run ends (deep chains included).
  const flows = allowDeepFlows(new FlowProducer({ connection, prefix }));
  const cancels = new CancelWatch(connection, store, logger, {
    onRunEnded: (runId) => {
      // Whichever worker finalised the run, every worker forgets its plan (and secret values).
      plans.drop(runId);
      for (const executor of executors.values()) {
        executor
          .runEnded?.(runId)
          .catch((err) => logger.warn({ err, runId }, "could not drop a run's files"));
      }
    },
  });
  const services: WorkerServices = {
    inventory: new InventoryStore(connection, opts.prefix, opts.inventoryFile, INVENTORY_REUSE_MS),
    secrets: new SecretStore(connection, opts.prefix, opts.secretKey),
  };
  const list = typeof opts.executors === 'function' ? opts.executors(services) : opts.executors;
  if (list.length === 0) throw new RangeError('a worker needs at least one executor');
  const executors = new Map(list.map((e) => [e.name, e]));
  const stepQueues = new Map<string, Queue>();
  const stepQueue = (name: string) => {
    let queue = stepQueues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection, prefix });
      stepQueues.set(name, queue);
    }
    return queue;
  };
  const lookupJob: JobLookup = async (queueName, jobId) => {
    const job = await Job.fromId(stepQueue(queueName), jobId);
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
  const onError = (worker: Worker) => {
    worker.on('error', (err) => {
      // BullMQ only reports a lost lock: stop that attempt, another worker owns the job now.
      const lost = /could not renew lock for job (\S+)/.exec(err.message)?.[1];
      if (lost) {
        worker.cancelJob(lost, 'lock_lost');
        logger.warn({ jobId: lost, queue: worker.name }, 'lost a job lock: stopping its attempt');
      } else logger.error({ err, queue: worker.name }, 'worker error');
    });
  };
  // One pool of slots for every step queue: WORKER_CONCURRENCY is per process.
  const slots = new Slots(opts.concurrency, () => consumers.trim());
  const consumers: StepConsumers = new StepConsumers(processStep, {
    capabilities: { executors: [...executors.keys()], tags: opts.tags, tagsOnly: opts.tagsOnly },
    slots,
    registry,
    logger,
    create: (name, processor) => new Worker(name, processor, { ...common, concurrency: opts.concurrency }),
    onWorker: (worker) => {
      onError(worker);
      worker.on('failed', (job) => {
        onJobFailed(deps, job as Job<StepJobData> | undefined).catch((err) =>
          logger.warn({ err, jobId: job?.id }, 'could not reconcile a failed job'),
        );
      });
    },
  });
  const others = [
    new Worker(QUEUES.gate, createGateProcessor(store), { ...common, concurrency: 100 }),
    new Worker(QUEUES.run, createRunFinalizer(deps), { ...common, concurrency: 20 }),
  ];
  for (const worker of others) onError(worker);
  await Promise.all(others.map((w) => w.waitUntilReady()));
  await consumers.start();
  for (const executor of list) {
    const about = await executor.describe?.();
    if (about) logger.info({ executor: executor.name, ...about.details }, 'executor ready');
    if (about?.warning) logger.warn({ executor: executor.name }, about.warning);
    await executor
      .sweep?.((ids) => store.runStates(ids))
      .catch((err) => logger.warn({ err }, 'sweep failed'));
  }
  const maintenance = await startMaintenance({
    ...opts,
    id,
    redis: connection,
    target,
    store,
    registry,
    deps,
    runsQueue,
    stepQueue,
    beat: () => ({
      id,
      executors: [...executors.keys()],
      tags: opts.tags,
      tagsOnly: opts.tagsOnly,
      concurrency: opts.concurrency,
      busy: slots.busy,
      started: slots.started,
    }),
  });
  logger.info(
    {
      id,
      executors: [...executors.keys()],
      tags: opts.tags,
      tagsOnly: opts.tagsOnly,
      concurrency: opts.concurrency,
    },
    'worker ready',
  );

  return {
    id,
    executors: [...executors.keys()],
    queues: () => consumers.queues(),
    healthPort: maintenance.healthPort,
    async close() {
      await Promise.all([maintenance.stop(), consumers.stop()]);
      // Jobs still waiting for a slot go straight back to the queue, for another worker.
      slots.close();
      const stepWorkers = consumers.workers();
      const workers = [...stepWorkers, ...others];
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
      await cancels.close();
      await maintenance.close();
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
  let cancel: (() => void) | undefined;
  const done = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      cancel = setLongTimeout(() => resolve(false), ms);
    }),
  ]);
  cancel?.();
  return done;
}
