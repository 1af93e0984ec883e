/**
 * How a step job ends, as a value. Every exit of the step and instance pipelines is a
 * `StepOutcome`; one writer records it (status, details, event, dependents made ready, gates
 * promoted) and one adapter turns it into what BullMQ sees (a return value, or the throw that
 * retries, fails, waits for children or hands the job back). No exit can end a job without its
 * status recorded, and nothing else writes a step's end.
 */
import { DelayedError, type Job, UnrecoverableError, WaitingChildrenError } from 'bullmq';
import { type SerializedError, serializeError } from '../errors.ts';
import type { StepJobData } from '../flows/index.ts';
import type { StepDetails, StepStatus } from '../store/index.ts';
import type { EmittedEvent } from './executor.ts';
import { promoteGates } from './gates.ts';
import type { RunPlan, StepPlan } from './run-plan.ts';
import { planFor, type StepProcessorDeps } from './step-deps.ts';

/** How one processing of a step (or instance) job ended. */
export type StepOutcome = { attempt?: number } & (
  | { kind: 'succeeded'; details: StepDetails; events: EmittedEvent[] }
  | { kind: 'failed'; error: SerializedError; details: StepDetails }
  | { kind: 'cancelled'; error: SerializedError; details: StepDetails }
  | { kind: 'skipped'; reason: string; details: StepDetails }
  /** A retriable failure with attempts left: recorded `queued`; BullMQ retries after the backoff. */
  | { kind: 'retry'; error: SerializedError; details: StepDetails }
  /** The worker stopped the attempt (shutdown, lost lock): recorded `queued`, run again elsewhere. */
  | { kind: 'handed-back'; error: SerializedError; details: StepDetails }
  /** A fan-out step added its instances and waits for them. */
  | { kind: 'waiting-children' }
  /** Already final in the record (a re-run after a crash, a reconciled need): nothing to write. */
  | { kind: 'concluded'; status: StepStatus; error?: SerializedError }
);

/** What a step job returns to BullMQ (visible in dashboards). */
export interface StepJobResult {
  status: 'succeeded' | 'skipped';
  exitCode?: number | null;
}

/**
 * Records a step's outcome. Final statuses are sent without waiting for the reply, together with
 * those of the other steps that end in the same tick (one script call): BullMQ's `moveToFinished`
 * follows on the same connection, so Redis applies them first and a dependent never waits a
 * round trip (should one land late, the dependent's start sees its need not final and looks
 * again). Gates are promoted for every final outcome, after the status is sent, so dependents
 * always wake and a gate never wakes before the status it waits for.
 */
export async function recordStep(
  deps: StepProcessorDeps,
  job: Job<StepJobData>,
  sp: StepPlan | undefined,
  outcome: StepOutcome,
): Promise<void> {
  const { runId, stepId } = job.data;
  const { store } = deps;
  const attempt = outcome.attempt;
  const final = async (status: StepStatus, details: StepDetails, event: Record<string, unknown>) => {
    const { sent, applied } = store.queueTransition({
      runId,
      stepId,
      status,
      details,
      event: { type: event.type as string, step: stepId, ...event },
      dependents: sp?.dependents,
      attempt,
    });
    applied.catch((err) => deps.logger.error({ err, runId, stepId, status }, 'could not record step status'));
    await sent;
    promoteGates(deps.gateQueue, sp?.gates ?? job.data.gates).catch((err) =>
      deps.logger.error({ err, runId, stepId }, 'could not promote gates'),
    );
  };
  switch (outcome.kind) {
    case 'succeeded':
      // Published before the step is recorded as succeeded: a dependent never sees one without the other.
      await store.publish({ runId, stepId }, outcome.events);
      return final('succeeded', outcome.details, {
        type: 'step.succeeded',
        exitCode: outcome.details.exitCode,
        attempt,
        ...(outcome.details.hosts && { hosts: outcome.details.hosts.length }),
      });
    case 'failed':
      return final('failed', outcome.details, {
        type: 'step.failed',
        error: outcome.error,
        exitCode: outcome.details.exitCode,
        attempt,
      });
    case 'cancelled':
      return final('cancelled', outcome.details, {
        type: 'step.failed',
        error: outcome.error,
        cancelled: true,
        attempt,
      });
    case 'skipped':
      return final('skipped', outcome.details, { type: 'step.skipped', reason: outcome.reason });
    case 'retry':
    case 'handed-back':
      await store.transition({
        runId,
        stepId,
        status: 'queued',
        details: outcome.details,
        event: {
          type: 'step.retrying',
          step: stepId,
          attempt,
          nextAttempt: (attempt ?? 0) + 1,
          reason: outcome.kind === 'retry' ? 'failed' : outcome.error.code,
          error: outcome.error,
        },
        attempt,
      });
      return;
    case 'concluded':
      await promoteGates(deps.gateQueue, sp?.gates ?? job.data.gates);
      return;
    case 'waiting-children':
      return;
  }
}

/** Turns an outcome into BullMQ's terms: the job's return value, or the throw that moves it. */
export async function settle(
  job: Job<StepJobData>,
  token: string | undefined,
  outcome: StepOutcome,
): Promise<StepJobResult> {
  switch (outcome.kind) {
    case 'succeeded':
      return { status: 'succeeded', exitCode: outcome.details.exitCode };
    case 'skipped':
      return { status: 'skipped' };
    case 'concluded':
      if (outcome.status === 'failed' || outcome.status === 'cancelled')
        throw new UnrecoverableError(outcome.error?.message ?? `step ${outcome.status}`);
      return { status: outcome.status === 'skipped' ? 'skipped' : 'succeeded' };
    case 'failed':
    case 'cancelled':
      throw new UnrecoverableError(outcome.error.message);
    case 'retry':
      throw new Error(outcome.error.message);
    case 'handed-back':
      // A lost lock means the job is another worker's now: only a shutdown moves it back.
      if (outcome.error.code === 'shutdown') {
        await job.moveToWait(token);
        throw new DelayedError();
      }
      throw new Error(outcome.error.message);
    case 'waiting-children':
      throw new WaitingChildrenError();
  }
}

/** An error no stage foresaw (Redis gone mid-way, a bug): retried while BullMQ has attempts left. */
export function unexpected(job: Job<StepJobData>, sp: StepPlan | undefined, err: unknown): StepOutcome {
  const error = serializeError(err);
  const details: StepDetails = {
    executor: sp?.step.executor ?? 'unknown',
    attempts: 0,
    error,
    finishedAt: new Date().toISOString(),
  };
  const retriable = !(err instanceof UnrecoverableError) && job.attemptsMade + 1 < (job.opts.attempts ?? 1);
  return retriable ? { kind: 'retry', error, details } : { kind: 'failed', error, details };
}

/**
 * The one shape of every step-queue job: load the plan, run the stages, record their outcome
 * with `write`, hand it to BullMQ. What the stages did not foresee still ends as an outcome.
 */
export async function endJob(
  deps: StepProcessorDeps,
  job: Job<StepJobData>,
  token: string | undefined,
  stages: (plan: RunPlan, sp: StepPlan) => Promise<StepOutcome>,
  write: (sp: StepPlan | undefined, outcome: StepOutcome) => Promise<void>,
): Promise<StepJobResult> {
  let sp: StepPlan | undefined;
  let outcome: StepOutcome;
  try {
    const plan = await planFor(deps, job.data.runId);
    sp = plan.steps.get(job.data.stepId);
    if (!sp) throw new UnrecoverableError(`run ${job.data.runId} has no step "${job.data.stepId}"`);
    outcome = await stages(plan, sp);
  } catch (err) {
    outcome = unexpected(job, sp, err);
  }
  await write(sp, outcome);
  return settle(job, token, outcome);
}
