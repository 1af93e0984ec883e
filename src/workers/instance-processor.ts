/**
 * One host instance of a fan-out step (a child job of the step's job): runs the step's command
 * on that host, records the instance's own status, logs and outputs, retries with the step's
 * policy, and with `strategy.failFast` stops the step's other instances after a final failure.
 */
import type { Job } from 'bullmq';
import { ConveyorError, type SerializedError, StepError, serializeError } from '../errors.ts';
import type { StepJobData } from '../flows/index.ts';
import { FINAL_STEP_STATUSES, type InstanceView } from '../store/index.ts';
import { buildExecution, runAttempt } from './attempt.ts';
import { buildContexts } from './expression-context.ts';
import { createMasker } from './mask.ts';
import { type StepJobResult, settle } from './step-outcome.ts';
import { planFor, type StepProcessorDeps } from './step-processor.ts';

/** Builds the processor of instance jobs. */
export function createInstanceProcessor(deps: StepProcessorDeps) {
  const { store } = deps;

  return async function processInstance(job: Job<StepJobData>): Promise<StepJobResult> {
    const { runId, stepId } = job.data;
    const host = job.data.host!;
    const plan = await planFor(deps, runId);
    const sp = plan.steps.get(stepId)!;
    const step = sp.step;
    const attempt = job.attemptsMade + 1;
    const [snapshot, current, failedFast] = await Promise.all([
      store.snapshot(runId, sp.reads, false),
      store.instances(runId, stepId, [host]),
      store.isFailedFast(runId, stepId),
    ]);
    const recorded = current[host];
    if (recorded && FINAL_STEP_STATUSES.has(recorded.status)) return settle(recorded.status, recorded.error);

    const record = (instance: InstanceView, event?: Record<string, unknown>) =>
      store.transitionInstance(
        runId,
        stepId,
        host,
        instance,
        event ? { type: 'step.progress', step: stepId, host, status: instance.status, ...event } : undefined,
      );
    if (snapshot.cancelRequested || failedFast) {
      const error = {
        code: 'cancelled',
        message: failedFast ? 'another host failed (strategy.failFast)' : 'run cancelled',
      };
      await record({ status: 'cancelled', attempts: 0, error }, { error });
      return settle('cancelled', error);
    }

    const startedAt = new Date().toISOString();
    await record({ status: 'running', attempts: attempt, startedAt }, { attempt });
    let secretValues: Record<string, string> = {};
    let execution: ReturnType<typeof buildExecution>;
    try {
      secretValues = sp.secrets.length && deps.secrets ? await deps.secrets.get(sp.secrets) : {};
      const missing = sp.secrets.filter((name) => secretValues[name] === undefined);
      if (missing.length)
        throw new StepError('secret_missing', `secret not set: ${missing.join(', ')}`, false);
      const contexts = buildContexts(plan, sp, snapshot, attempt, secretValues);
      execution = buildExecution(plan, sp, contexts, attempt, secretValues, deps.limits.maxOutputBytes, host);
    } catch (err) {
      const error =
        err instanceof ConveyorError
          ? serializeError(err)
          : { code: 'expression_error', message: (err as Error).message };
      return finalFailure(
        { ...error, message: createMasker(Object.values(secretValues))(error.message) },
        { startedAt },
      );
    }
    const executor = deps.executors.get('ssh');
    if (!executor)
      return finalFailure(
        { code: 'no_executor', message: 'this worker has no "ssh" executor' },
        { startedAt },
      );

    const outcome = await runAttempt({
      store,
      cancels: deps.cancels,
      logger: deps.logger,
      executor,
      execution,
      timeoutMs: step.timeoutMs,
      watch: [runId, `${runId}/${stepId}`],
      mask: createMasker(Object.values(secretValues)),
      maxLogBytes: deps.limits.maxLogBytes,
      host,
    });
    if (outcome.kind === 'succeeded') {
      const { exitCode, outputs, finishedAt, events } = outcome;
      await store.publish({ runId, stepId, host }, events);
      await record(
        { status: 'succeeded', attempts: attempt, startedAt, finishedAt, exitCode, outputs },
        { exitCode },
      );
      return { status: 'succeeded', exitCode };
    }
    const details = { attempts: attempt, startedAt, ...outcome.details, error: outcome.error };
    if (outcome.kind === 'cancelled') {
      await record({ status: 'cancelled', ...details }, { error: outcome.error });
      return settle('cancelled', outcome.error);
    }
    if (outcome.retriable && !outcome.limit && attempt < step.retries.attempts) {
      await record(
        { status: 'queued', ...details },
        { retrying: true, nextAttempt: attempt + 1, error: outcome.error },
      );
      throw new Error(outcome.error.message);
    }
    return finalFailure(outcome.error, details);

    async function finalFailure(
      error: SerializedError,
      details: Partial<InstanceView>,
    ): Promise<StepJobResult> {
      await record(
        { status: 'failed', attempts: attempt, ...details, error, finishedAt: new Date().toISOString() },
        { error },
      );
      if (step.strategy.failFast) await store.failFast(runId, stepId);
      return settle('failed', error);
    }
  };
}
