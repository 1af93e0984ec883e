/**
 * The run's root job: BullMQ wakes it when every sink has finished, which (through primary
 * parents and gates) means every step has. It records the run's final status once.
 */
import type { Job } from 'bullmq';
import type { RunMeta } from '../flows/index.ts';
import type { RunStore } from '../store/index.ts';
import type { PlanCache } from './run-plan.ts';

/** The processor of the `runs` queue. */
export function createRunFinalizer(store: RunStore, plans: PlanCache) {
  return async (job: Job<RunMeta>): Promise<{ status: string }> => {
    const runId = job.data.id;
    let run = await store.getRun(runId);
    if (!run) {
      // The API died between adding the flow and writing the record: write it from the root job.
      await store.announce(job.data);
      run = (await store.getRun(runId))!;
    }
    const failed = Object.entries(run.steps)
      .filter(([, s]) => s.status === 'failed' && !s.continueOnError)
      .map(([id]) => id);
    const status = run.cancelRequested ? 'cancelled' : failed.length ? 'failed' : 'succeeded';
    await store.finish(runId, status, failed.length ? { failedSteps: failed } : {});
    plans.drop(runId);
    return { status };
  };
}
