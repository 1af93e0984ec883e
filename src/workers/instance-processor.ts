/**
 * One host instance of a fan-out step (a child job of the step's job), through the same stages
 * as a step: begin (cancelled or failed fast? interrupted? a new attempt) → prepare → attempt →
 * judge, then one writer records the instance's own status, logs and outputs, and the same
 * adapter ends the job. With `strategy.failFast`, a final failure stops the step's other
 * instances. A step on exactly one host runs its instance in its own job (`runOneHost`): the
 * same stages and record, without the child job.
 */
import type { Job } from 'bullmq';
import type { StepJobData } from '../flows/index.ts';
import {
  FINAL_STEP_STATUSES,
  type InstanceView,
  type StepDetails,
  type StepSnapshot,
} from '../store/index.ts';
import { runAttempt } from './attempt.ts';
import type { RunPlan, StepPlan } from './run-plan.ts';
import { equip, judge, prepare } from './stages.ts';
import type { StepProcessorDeps } from './step-deps.ts';
import { endJob, type StepJobResult, type StepOutcome } from './step-outcome.ts';

/** Builds the processor of instance jobs. */
export function createInstanceProcessor(deps: StepProcessorDeps) {
  return async function processInstance(
    job: Job<StepJobData>,
    token?: string,
    signal?: AbortSignal,
  ): Promise<StepJobResult> {
    return endJob(
      deps,
      job,
      token,
      (plan, sp) =>
        instanceOutcome(deps, job, job.data.host!, {
          signal,
          sp,
          plan,
          afterCancel: job.data.afterCancel === true,
        }),
      (sp, outcome) => recordInstance(deps, job.data.host!, job, sp, outcome),
    );
  };
}

/**
 * The instance of a step on a single host, run by the step's own job (`job`, whose retry budget
 * it spends): its stages and its record exactly as an instance job's, without a child job and
 * the step job's second processing. Returns the instance's outcome, already recorded.
 */
export async function runOneHost(
  deps: StepProcessorDeps,
  job: Job<StepJobData>,
  host: string,
  stage: InstanceStage,
): Promise<StepOutcome> {
  const outcome = await instanceOutcome(deps, job, host, stage);
  await recordInstance(deps, host, job, stage.sp, outcome);
  return outcome;
}

/** What an instance's stages need besides its job and host. */
export interface InstanceStage {
  /** The worker's interrupt (shutdown, lost lock). */
  signal: AbortSignal | undefined;
  sp: StepPlan;
  plan: RunPlan;
  /** Its step started after the run's cancel (an `always()` cleanup): the cancel spares it. */
  afterCancel: boolean;
  /** The step's snapshot when the step's own job runs the instance (`runOneHost`). */
  snapshot?: StepSnapshot;
}

async function instanceOutcome(
  deps: StepProcessorDeps,
  job: Job<StepJobData>,
  host: string,
  stage: InstanceStage,
): Promise<StepOutcome> {
  const { signal, sp, plan, afterCancel } = stage;
  const { runId, stepId } = job.data;
  const { store } = deps;
  const base: StepDetails = { executor: 'ssh', attempts: 0 };
  // The host's address and credentials are read while the instance begins, not after.
  deps.executors.get('ssh')?.prefetch?.(host);
  // Run by its step's job, the instance has the step's snapshot and no siblings to fail it
  // fast; a final record of its own is found by the begin below.
  const [snapshot, current, failedFast] = stage.snapshot
    ? [stage.snapshot, {} as Record<string, InstanceView>, false]
    : await Promise.all([
        store.snapshot(runId, sp.reads, false),
        store.instances.get(runId, stepId, [host]),
        store.instances.isFailedFast(runId, stepId),
      ]);
  const recorded = current[host];
  if (recorded && FINAL_STEP_STATUSES.has(recorded.status))
    return { kind: 'concluded', status: recorded.status, error: recorded.error };
  if ((snapshot.cancelRequested && !afterCancel) || failedFast) {
    const error = {
      code: 'cancelled',
      message: failedFast ? 'another host failed (strategy.failFast)' : 'run cancelled',
    };
    return { kind: 'cancelled', error, details: { ...base, error } };
  }

  // begin
  const startedAt = new Date().toISOString();
  const begun = await store.instances.transition(
    runId,
    stepId,
    host,
    { status: 'running', attempts: 0, startedAt },
    { type: 'step.progress', step: stepId, host, status: 'running' },
    { maxInterruptions: deps.limits.maxInterruptions },
  );
  if (begun === 'interrupted') {
    const error = {
      code: 'worker_lost',
      message: `its worker died more than ${deps.limits.maxInterruptions} times while running it`,
    };
    return { kind: 'failed', error, details: { ...base, error } };
  }
  if (typeof begun !== 'number' || begun === 0) {
    const now = (await store.instances.get(runId, stepId, [host]))[host];
    return { kind: 'concluded', status: now?.status ?? 'failed', error: now?.error };
  }
  const attempt = begun;
  const details: StepDetails = { ...base, attempts: attempt, startedAt };

  // prepare
  const prepared = await prepare(deps, plan, sp, snapshot, attempt);
  if ('error' in prepared)
    return { kind: 'failed', attempt, error: prepared.error, details: { ...details, error: prepared.error } };
  const equipped = equip(deps, plan, sp, prepared, attempt, 'ssh', host);
  if ('error' in equipped) {
    const { error } = equipped;
    return { kind: 'failed', attempt, error, details: { ...details, error } };
  }

  // attempt, judge
  const result = await runAttempt({
    store,
    cancels: deps.cancels,
    logger: deps.logger,
    ...equipped,
    timeoutMs: sp.step.timeoutMs,
    // failFast's key always; the run's cancel unless the step started after it.
    watch: afterCancel ? [`${runId}/${stepId}`] : [runId, `${runId}/${stepId}`],
    mask: prepared.mask,
    maxLogBytes: deps.limits.maxLogBytes,
    host,
    interrupt: signal,
  });
  return judge(result, details, attempt, job);
}

/**
 * The instance's writer: its own record and event, and fail-fast after a final failure. The
 * record is sent without waiting for its reply, as a step's final record is (step-outcome.ts):
 * what the job writes next (its step's record, BullMQ's `moveToFinished`) goes on the same
 * connection, so Redis applies the instance's first; a refused write is logged.
 */
async function recordInstance(
  deps: StepProcessorDeps,
  host: string,
  job: Job<StepJobData>,
  sp: StepPlan | undefined,
  outcome: StepOutcome,
): Promise<void> {
  const { runId, stepId } = job.data;
  const { store } = deps;
  const write = (instance: InstanceView, event: Record<string, unknown>) => {
    store.instances
      .transition(
        runId,
        stepId,
        host,
        instance,
        { type: 'step.progress', step: stepId, host, status: instance.status, ...event },
        { attempt: outcome.attempt },
      )
      .catch((err) =>
        deps.logger.error(
          { err, runId, stepId, host, status: instance.status },
          'could not record host status',
        ),
      );
  };
  const finishedAt = new Date().toISOString();
  switch (outcome.kind) {
    case 'succeeded': {
      const { attempts, startedAt, exitCode, outputs } = outcome.details;
      await store.publish({ runId, stepId, host }, outcome.events);
      write({ status: 'succeeded', attempts, startedAt, finishedAt, exitCode, outputs }, { exitCode });
      return;
    }
    case 'failed':
    case 'cancelled': {
      const { attempts, startedAt, exitCode, signal } = outcome.details;
      const status = outcome.kind;
      write(
        { status, attempts, startedAt, finishedAt, exitCode, signal, error: outcome.error },
        { error: outcome.error },
      );
      if (status === 'failed' && sp?.step.strategy.failFast) await store.instances.failFast(runId, stepId);
      return;
    }
    case 'retry':
    case 'handed-back': {
      const { attempts, startedAt, exitCode, signal } = outcome.details;
      write(
        { status: 'queued', attempts, startedAt, exitCode, signal, error: outcome.error },
        { retrying: true, nextAttempt: (outcome.attempt ?? 0) + 1, error: outcome.error },
      );
      return;
    }
    case 'skipped':
    case 'concluded':
    case 'waiting-children':
      return;
  }
}
