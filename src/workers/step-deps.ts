/**
 * What the step, instance and run processors share, built once per worker, and the run plan
 * they all start from.
 */
import { type FlowProducer, type Queue, UnrecoverableError } from 'bullmq';
import type { Logger } from 'pino';
import type { RunMeta } from '../flows/index.ts';
import type { InventoryStore, RunStore } from '../store/index.ts';
import type { CancelWatch } from './cancel-watch.ts';
import type { Executor } from './executor.ts';
import type { PlanCache, RunPlan } from './run-plan.ts';

/** Where secret values come from (the secrets store once configured). */
export interface SecretSource {
  /** Values of the named secrets; a missing one is absent from the result. */
  get(names: string[]): Promise<Record<string, string>>;
}

/** Reads a step job's BullMQ state in the step queue `queueName` (for the reconciler). */
export type JobLookup = (
  queueName: string,
  jobId: string,
) => Promise<{ state: string; failedReason?: string; stalls: number } | undefined>;

/** Everything the processors need, built once per worker. */
export interface StepProcessorDeps {
  store: RunStore;
  plans: PlanCache;
  executors: ReadonlyMap<string, Executor>;
  gateQueue: Queue;
  /** Adds fan-out instances as children of their step's job. */
  flows: FlowProducer;
  /** Reads a run's meta from its root job when the record is missing (the API died mid-submit). */
  loadMeta(runId: string): Promise<RunMeta | undefined>;
  lookupJob: JobLookup;
  cancels: CancelWatch;
  secrets?: SecretSource;
  inventory?: InventoryStore;
  logger: Logger;
  limits: {
    maxLogBytes: number;
    maxOutputBytes: number;
    /** Times a step's (or instance's) worker may die under it before the step fails. */
    maxInterruptions: number;
  };
}

/** The run's plan, read from Redis (or its root job) the first time this worker sees the run. */
export function planFor(deps: StepProcessorDeps, runId: string): Promise<RunPlan> {
  return deps.plans.getOrLoad(runId, async () => {
    let meta = (await deps.store.snapshot(runId, [], true)).meta;
    if (!meta) {
      meta = await deps.loadMeta(runId);
      if (!meta) throw new UnrecoverableError(`run ${runId} has neither a record nor a root job`);
      await deps.store.announce(meta);
    }
    return meta;
  });
}
