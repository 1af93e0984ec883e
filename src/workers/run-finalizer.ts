/**
 * The run's root job: BullMQ wakes it when every sink has finished, which (through primary
 * parents and gates) means every step's job has ended. Steps whose status never reached the
 * record are reconciled first (reconciler.ts), so the run's final status never reports
 * `succeeded` while a step is not final. Then every worker drops the run's workspace.
 */
import type { Job } from 'bullmq';
import type { RunMeta } from '../flows/index.ts';
import { FINAL_STEP_STATUSES } from '../store/index.ts';
import { releaseGroup } from '../triggers/index.ts';
import { settleNeeds } from './reconciler.ts';
import type { StepProcessorDeps } from './step-deps.ts';

/** The processor of the `runs` queue. */
export function createRunFinalizer(deps: StepProcessorDeps) {
  const { store, plans } = deps;
  return async (job: Job<RunMeta>): Promise<{ status: string }> => {
    const runId = job.data.id;
    let run = await store.getRun(runId);
    if (!run) {
      // The API died between adding the flow and writing the record: write it from the root job.
      await store.announce(job.data);
      run = (await store.getRun(runId))!;
    }
    const open = Object.entries(run.steps)
      .filter(([, s]) => !FINAL_STEP_STATUSES.has(s.status))
      .map(([id]) => id);
    if (open.length) {
      await settleNeeds(deps, runId, open, true);
      run = (await store.getRun(runId))!;
      const still = Object.entries(run.steps).filter(([, s]) => !FINAL_STEP_STATUSES.has(s.status));
      if (still.length)
        throw new Error(`steps not final at the run's end: ${still.map(([id]) => id).join(', ')}`);
    }
    const failed = Object.entries(run.steps)
      .filter(([, s]) => s.status === 'failed' && !s.continueOnError)
      .map(([id]) => id);
    const status = run.cancelRequested ? 'cancelled' : failed.length ? 'failed' : 'succeeded';
    await store.finish(runId, status, failed.length ? { failedSteps: failed } : {});
    // Concurrency groups: the next waiting run of the group starts now.
    await releaseGroup(deps, job.data);
    deps.logger.info(
      { runId, workflow: run.workflow.name, status, durationMs: Date.now() - Date.parse(run.createdAt) },
      'run finished',
    );
    plans.drop(runId);
    await store.announceRunEnded(runId);
    return { status };
  };
}
