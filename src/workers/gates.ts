/**
 * Gates: the jobs that carry a DAG's extra `needs` edges (see flows/compile.ts). A finishing step
 * promotes its gates; the gate processor completes a promoted gate at once, which is what wakes
 * the dependent through BullMQ's fan-in.
 */
import { DelayedError, type Job, type Queue } from 'bullmq';
import type { GateJobData } from '../flows/index.ts';
import { FINAL_STEP_STATUSES, type RunStore } from '../store/index.ts';

/** Promotes parked gates, ignoring ones already promoted (a retried step promotes again). */
export async function promoteGates(queue: Queue, gateIds: string[]): Promise<void> {
  if (gateIds.length === 0) return;
  const backend = queue.getBackend();
  await Promise.all(
    gateIds.map(async (id) => {
      try {
        await backend.promote(id);
      } catch (err) {
        const state = await queue.getJobState(id);
        if (state === 'delayed') throw err;
      }
    }),
  );
}

/** How long a gate that woke too early waits before it looks again. */
export const GATE_RECHECK_MS = 1000;

/**
 * Completes a gate whose step is final. A gate that wakes while its step is not final (promoted
 * by hand, its year of parking ran out, or its promote overtook the status write when a script
 * had to be reloaded) waits a moment and looks again instead of letting the dependent start early.
 */
export function createGateProcessor(store: RunStore) {
  return async (job: Job<GateJobData>, token?: string): Promise<string> => {
    const { runId, stepId } = job.data;
    const status = await store.stepStatus(runId, stepId);
    if (status && FINAL_STEP_STATUSES.has(status)) return status;
    await job.moveToDelayed(Date.now() + GATE_RECHECK_MS, token);
    throw new DelayedError();
  };
}
