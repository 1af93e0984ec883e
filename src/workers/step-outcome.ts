/**
 * How a step job ends: its final status recorded (with its event and the dependents it makes
 * ready), its gates promoted, and the value or error BullMQ sees.
 */
import { type Job, UnrecoverableError } from 'bullmq';
import type { SerializedError } from '../errors.ts';
import type { StepJobData } from '../flows/index.ts';
import type { EventInput, StepDetails, StepStatus } from '../store/index.ts';
import { promoteGates } from './gates.ts';
import type { StepPlan } from './run-plan.ts';
import type { StepProcessorDeps } from './step-processor.ts';

/** What a step job returns to BullMQ (visible in dashboards). */
export interface StepJobResult {
  status: 'succeeded' | 'skipped';
  exitCode?: number | null;
}

/** Throws for the statuses BullMQ must see as failures; otherwise the job's return value. */
export function settle(status: string, error?: SerializedError): StepJobResult {
  if (status === 'failed' || status === 'cancelled')
    throw new UnrecoverableError(error?.message ?? `step ${status}`);
  return { status: status === 'skipped' ? 'skipped' : 'succeeded' };
}

/**
 * Records a final status and promotes the step's gates without waiting for the replies: BullMQ's
 * moveToFinished follows on the same connection, so Redis applies these writes first and the
 * step's dependents never wait a round trip for them. (Should a write ever land late, a
 * dependent's start-step sees its need not final and reads again; a gate looks again too.)
 */
export function finishStep(
  deps: StepProcessorDeps,
  job: Job<StepJobData>,
  sp: StepPlan,
  status: StepStatus,
  details: StepDetails,
  event: EventInput,
): void {
  const { runId, stepId } = job.data;
  deps.store
    .transition(runId, stepId, status, details, event, sp.dependents)
    .catch((err) => deps.logger.error({ err, runId, stepId, status }, 'could not record step status'));
  promoteGates(deps.gateQueue, job.data.gates).catch((err) =>
    deps.logger.error({ err, runId, stepId }, 'could not promote gates'),
  );
}

/** Ends a step job whose outcome is already recorded (a retry after a crash, or a skip). */
export async function concludeStep(
  deps: StepProcessorDeps,
  job: Job<StepJobData>,
  status: string,
  error?: SerializedError,
): Promise<StepJobResult> {
  await promoteGates(deps.gateQueue, job.data.gates);
  return settle(status, error);
}
