/**
 * Processes one step job: decides (skip, run, or finish what a crashed worker already recorded),
 * runs one attempt, records the outcome and its event, and promotes the step's gates before BullMQ
 * completes the job. Step failures are thrown so BullMQ retries them (with the step's backoff)
 * and dashboards show them; every dependent still wakes (`ignoreDependencyOnFailure`).
 *
 * A step on a group of hosts fans out instead (fan-out.ts, instance-processor.ts); how a step
 * job ends is step-outcome.ts.
 */
import { type FlowProducer, type Job, type Queue, UnrecoverableError } from 'bullmq';
import type { Logger } from 'pino';
import { ConveyorError, type SerializedError, StepError, serializeError } from '../errors.ts';
import { evaluate, type RunMeta, type StepJobData, truthy } from '../flows/index.ts';
import type { InventoryStore, RunStore, StepDetails } from '../store/index.ts';
import { buildExecution, runAttempt } from './attempt.ts';
import type { CancelWatch } from './cancel-watch.ts';
import type { Executor } from './executor.ts';
import { buildContexts, statusView } from './expression-context.ts';
import { aggregate, fanOut } from './fan-out.ts';
import { createMasker } from './mask.ts';
import type { PlanCache, RunPlan } from './run-plan.ts';
import { concludeStep, finishStep, type StepJobResult, settle } from './step-outcome.ts';

export type { StepJobResult } from './step-outcome.ts';

/** Where secret values come from (the secrets store once configured). */
export interface SecretSource {
  /** Values of the named secrets; a missing one is absent from the result. */
  get(names: string[]): Promise<Record<string, string>>;
}

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
  cancels: CancelWatch;
  secrets?: SecretSource;
  inventory?: InventoryStore;
  logger: Logger;
  limits: { maxLogBytes: number; maxOutputBytes: number };
}

/** How long a step woken before its needs' statuses landed waits for them (see start-step.lua). */
const EARLY_WAIT_MS = 30_000;

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

/** Builds the BullMQ processor for step queues. */
export function createStepProcessor(
  deps: StepProcessorDeps,
  processInstance: (job: Job<StepJobData>) => Promise<StepJobResult>,
) {
  const { store, logger } = deps;

  return async function processStep(job: Job<StepJobData>, token?: string): Promise<StepJobResult> {
    if (job.data.host !== undefined) return processInstance(job);
    const { runId, stepId } = job.data;
    const plan = await planFor(deps, runId);
    const sp = plan.steps.get(stepId);
    if (!sp) throw new UnrecoverableError(`run ${runId} has no step "${stepId}"`);
    const step = sp.step;
    const attempt = job.attemptsMade + 1;
    const base: StepDetails = {
      executor: step.executor,
      attempts: attempt,
      ...(step.continueOnError && { continueOnError: true }),
    };
    const fail = (error: SerializedError, details: Partial<StepDetails> = {}) => {
      finishStep(
        deps,
        job,
        sp,
        'failed',
        { ...base, ...details, error, finishedAt: now() },
        {
          type: 'step.failed',
          step: stepId,
          error,
          exitCode: details.exitCode,
          attempt,
        },
      );
      return settle('failed', error);
    };
    if (job.data.phase === 'fanned-out') return aggregate(deps, job, sp, base, fail);

    const startedAt = now();
    const startedEvent = { type: 'step.started', step: stepId, attempt, executor: step.executor };
    // One round trip: the needs' states, and (default condition) the decision and the start.
    const startOnce = () =>
      store.startStep(runId, stepId, sp.reads, step.needs.length, {
        withMeta: false,
        autoStart: step.if === 'success()',
        details: { ...base, startedAt },
        event: startedEvent,
      });
    let start = await startOnce();
    const deadline = Date.now() + EARLY_WAIT_MS;
    for (let wait = 5; start.outcome === 'early'; wait = Math.min(wait * 2, 1000)) {
      if (Date.now() > deadline)
        throw new Error(`a need of step "${stepId}" has no final status after ${EARLY_WAIT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, wait));
      start = await startOnce();
    }
    const snapshot = start.snapshot;
    if (start.outcome === 'missing') throw new Error(`run ${runId} has no record`);
    if (start.outcome === 'final')
      return concludeStep(deps, job, start.current!, snapshot.details[stepId]?.error);

    let secretValues: Record<string, string> = {};
    let contexts: Record<string, unknown>;
    try {
      secretValues = sp.secrets.length && deps.secrets ? await deps.secrets.get(sp.secrets) : {};
      const missing = sp.secrets.filter((name) => secretValues[name] === undefined);
      if (missing.length)
        throw new StepError('secret_missing', `secret not set: ${missing.join(', ')}`, false);
      contexts = buildContexts(plan, sp, snapshot, attempt, secretValues);
      if (start.outcome === 'decide') {
        // GitHub's `if` semantics, evaluated with the needs' recorded states.
        if (!truthy(evaluate(sp.condition, contexts, statusView(sp, snapshot)))) {
          if (snapshot.cancelRequested && job.attemptsMade > 0) {
            // It ran before and was waiting to retry: the cancel stopped it, so it is cancelled.
            const error = { code: 'cancelled', message: 'run cancelled while the step waited to retry' };
            const details = { ...base, attempts: job.attemptsMade, error, finishedAt: startedAt };
            finishStep(deps, job, sp, 'cancelled', details, {
              type: 'step.failed',
              step: stepId,
              error,
              cancelled: true,
            });
            return settle('cancelled', error);
          }
          const reason = snapshot.cancelRequested ? 'run cancelled' : `condition "${step.if}" is false`;
          finishStep(
            deps,
            job,
            sp,
            'skipped',
            { ...base, attempts: 0 },
            { type: 'step.skipped', step: stepId, reason },
          );
          return settle('skipped');
        }
        if (!(await store.transition(runId, stepId, 'running', { ...base, startedAt }, startedEvent))) {
          return concludeStep(
            deps,
            job,
            (await store.snapshot(runId, [stepId], false)).status[stepId] ?? 'failed',
          );
        }
      }
    } catch (err) {
      const mask = createMasker(Object.values(secretValues));
      const error =
        err instanceof ConveyorError
          ? serializeError(err)
          : { code: 'expression_error', message: (err as Error).message };
      return fail({ ...error, message: mask(error.message) });
    }

    if (step.hosts !== undefined) return fanOut(deps, job, token, sp, { ...base, startedAt }, fail);

    const executor = deps.executors.get(step.executor);
    if (!executor)
      return fail({ code: 'no_executor', message: `this worker has no "${step.executor}" executor` });
    const mask = createMasker(Object.values(secretValues));
    let execution: ReturnType<typeof buildExecution>;
    try {
      execution = buildExecution(plan, sp, contexts, attempt, secretValues, deps.limits.maxOutputBytes);
    } catch (err) {
      return fail({ code: 'expression_error', message: mask((err as Error).message) });
    }
    const outcome = await runAttempt({
      store,
      cancels: deps.cancels,
      logger,
      executor,
      execution,
      timeoutMs: step.timeoutMs,
      // A step that starts after a cancel (an always() cleanup) is not cancelled by it.
      watch: snapshot.cancelRequested ? [] : [runId],
      mask,
      maxLogBytes: deps.limits.maxLogBytes,
    });

    if (outcome.kind === 'succeeded') {
      const { exitCode, outputs, finishedAt, events } = outcome;
      // Published before the step is recorded as succeeded: a dependent never sees one without the other.
      await store.publish({ runId, stepId }, events);
      const emitted = events.length ? { emitted: events.map((e) => e.type) } : {};
      finishStep(
        deps,
        job,
        sp,
        'succeeded',
        { ...base, startedAt, finishedAt, exitCode, outputs, ...emitted },
        {
          type: 'step.succeeded',
          step: stepId,
          exitCode,
          attempt,
        },
      );
      return { status: 'succeeded', exitCode };
    }
    const details = { ...base, startedAt, ...outcome.details, error: outcome.error };
    if (outcome.kind === 'cancelled') {
      finishStep(deps, job, sp, 'cancelled', details, {
        type: 'step.failed',
        step: stepId,
        error: outcome.error,
        cancelled: true,
      });
      return settle('cancelled', outcome.error);
    }
    if (outcome.retriable && !outcome.limit && attempt < step.retries.attempts) {
      await store.transition(runId, stepId, 'queued', details, {
        type: 'step.retrying',
        step: stepId,
        attempt,
        nextAttempt: attempt + 1,
        error: outcome.error,
      });
      throw new Error(outcome.error.message);
    }
    return fail(outcome.error, { startedAt, ...outcome.details });
  };
}

function now(): string {
  return new Date().toISOString();
}
