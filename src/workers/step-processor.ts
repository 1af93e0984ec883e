/**
 * Processes one step job: decides (skip, run, or finish what a crashed worker already recorded),
 * resolves expressions, runs the executor with timeout, cancel and log cap wired to one abort
 * signal, records the outcome and its event, and promotes the step's gates before BullMQ
 * completes the job. Step failures are thrown so BullMQ retries them (with the step's backoff)
 * and dashboards show them; every dependent still wakes (`ignoreDependencyOnFailure`).
 */
import { type Job, type Queue, UnrecoverableError } from 'bullmq';
import type { Logger } from 'pino';
import {
  OutputLimitError,
  type SerializedError,
  StepCancelledError,
  StepError,
  StepTimeoutError,
  serializeError,
} from '../errors.ts';
import { evaluate, exprVar, type RunMeta, type StepJobData, toText, truthy } from '../flows/index.ts';
import { FINAL_STEP_STATUSES, type RunStore, type StepDetails, type StepSnapshot } from '../store/index.ts';
import type { CancelWatch } from './cancel-watch.ts';
import type { Executor, StepExecution, StepResult } from './executor.ts';
import { buildContexts, renderTemplate, statusView } from './expression-context.ts';
import { promoteGates } from './gates.ts';
import { LogSink } from './log-sink.ts';
import { createMasker, maskDeep } from './mask.ts';
import type { PlanCache, RunPlan, StepPlan } from './run-plan.ts';

/** Where secret values come from (the secrets store once configured). */
export interface SecretSource {
  /** Values of the named secrets; a missing one is absent from the result. */
  get(names: string[]): Promise<Record<string, string>>;
}

/** Everything the processor needs, built once per worker. */
export interface StepProcessorDeps {
  store: RunStore;
  plans: PlanCache;
  executors: ReadonlyMap<string, Executor>;
  gateQueue: Queue;
  /** Reads a run's meta from its root job when the record is missing (the API died mid-submit). */
  loadMeta(runId: string): Promise<RunMeta | undefined>;
  cancels: CancelWatch;
  secrets?: SecretSource;
  logger: Logger;
  limits: { maxLogBytes: number; maxOutputBytes: number };
}

/** What a step job returns to BullMQ (visible in dashboards). */
export interface StepJobResult {
  status: 'succeeded' | 'skipped';
  exitCode?: number | null;
}

/** Builds the BullMQ processor for step queues. */
export function createStepProcessor(deps: StepProcessorDeps) {
  const { store, logger } = deps;

  async function loadPlan(
    runId: string,
    stepId: string,
  ): Promise<{ plan: RunPlan; sp: StepPlan; snapshot: StepSnapshot }> {
    let plan = deps.plans.get(runId);
    const reads = (p: RunPlan | undefined) => [stepId, ...(p?.steps.get(stepId)?.reads ?? [])];
    let snapshot = await store.snapshot(runId, reads(plan), !plan);
    if (!plan) {
      let meta = snapshot.meta;
      if (!meta) {
        meta = await deps.loadMeta(runId);
        if (!meta) throw new UnrecoverableError(`run ${runId} has neither a record nor a root job`);
        await store.announce(meta);
      }
      plan = deps.plans.add(meta);
      snapshot = await store.snapshot(runId, reads(plan), false);
    }
    const sp = plan.steps.get(stepId);
    if (!sp) throw new UnrecoverableError(`run ${runId} has no step "${stepId}"`);
    return { plan, sp, snapshot };
  }

  /** Ends a step job whose outcome is already recorded (a retry after a crash, or a skip). */
  async function conclude(
    job: Job<StepJobData>,
    status: string,
    error?: SerializedError,
  ): Promise<StepJobResult> {
    await promoteGates(deps.gateQueue, job.data.gates);
    if (status === 'failed' || status === 'cancelled') {
      throw new UnrecoverableError(error?.message ?? `step ${status}`);
    }
    return { status: status === 'skipped' ? 'skipped' : 'succeeded' };
  }

  return async function processStep(job: Job<StepJobData>): Promise<StepJobResult> {
    const { runId, stepId } = job.data;
    const { plan, sp, snapshot } = await loadPlan(runId, stepId);
    const recorded = snapshot.status[stepId];
    if (recorded && FINAL_STEP_STATUSES.has(recorded)) {
      return conclude(job, recorded, snapshot.details[stepId]?.error);
    }
    const step = sp.step;
    const attempt = job.attemptsMade + 1;
    const base: StepDetails = {
      executor: step.executor,
      attempts: attempt,
      ...(step.continueOnError && { continueOnError: true }),
    };

    const secretValues = sp.secrets.length && deps.secrets ? await deps.secrets.get(sp.secrets) : {};
    const mask = createMasker(Object.values(secretValues));
    const fail = async (error: SerializedError, details: Partial<StepDetails> = {}) => {
      const masked = maskDeep(error, mask);
      await store.transition(
        runId,
        stepId,
        'failed',
        { ...base, ...details, error: masked, finishedAt: now() },
        {
          type: 'step.failed',
          step: stepId,
          error: masked,
          exitCode: details.exitCode,
          attempt,
        },
        sp.dependents,
      );
      return conclude(job, 'failed', masked);
    };

    // Decide: GitHub's `if` semantics, evaluated with the needs' recorded states.
    let contexts: Record<string, unknown>;
    let run: boolean;
    try {
      const missing = sp.secrets.filter((name) => secretValues[name] === undefined);
      if (missing.length)
        throw new StepError('secret_missing', `secret not set: ${missing.join(', ')}`, false);
      contexts = buildContexts(plan, sp, snapshot, attempt, secretValues);
      run = truthy(evaluate(sp.condition, contexts, statusView(sp, snapshot)));
    } catch (err) {
      return fail(
        err instanceof StepError
          ? serializeError(err)
          : { code: 'expression_error', message: (err as Error).message },
      );
    }
    if (!run) {
      const reason = snapshot.cancelRequested ? 'run cancelled' : `condition "${step.if}" is false`;
      await store.transition(
        runId,
        stepId,
        'skipped',
        { ...base, attempts: 0 },
        { type: 'step.skipped', step: stepId, reason },
        sp.dependents,
      );
      return conclude(job, 'skipped');
    }

    const executor = deps.executors.get(step.executor);
    if (!executor)
      return fail({ code: 'no_executor', message: `this worker has no "${step.executor}" executor` });

    let execution: StepExecution;
    try {
      const env: Record<string, string> = { ...(contexts.env as Record<string, string>) };
      sp.commandExprs.forEach((expr, n) => {
        env[exprVar(n)] = toText(evaluate(expr, contexts));
      });
      Object.assign(env, {
        CONVEYOR_RUN_ID: runId,
        CONVEYOR_STEP_ID: stepId,
        CONVEYOR_RUN_ATTEMPT: String(attempt),
      });
      execution = {
        runId,
        stepId,
        attempt,
        command: step.command?.text,
        function: step.function,
        env,
        cwd: sp.cwd ? renderTemplate(sp.cwd, contexts) : undefined,
        secrets: Object.values(secretValues),
        idempotencyKey: `${runId}.${stepId}`,
        limits: { maxOutputBytes: deps.limits.maxOutputBytes },
        options: { ...step.vm, hosts: step.hosts, sudo: step.sudo },
        context: {
          inputs: plan.meta.inputs,
          steps: contexts.steps,
          env,
          secrets: secretValues,
          run: { id: runId, attempt },
        },
      };
    } catch (err) {
      return fail({ code: 'expression_error', message: (err as Error).message });
    }

    const startedAt = now();
    const started = await store.transition(
      runId,
      stepId,
      'running',
      { ...base, startedAt },
      {
        type: 'step.started',
        step: stepId,
        attempt,
        executor: step.executor,
      },
    );
    if (!started)
      return conclude(job, (await store.snapshot(runId, [stepId], false)).status[stepId] ?? 'failed');

    const controller = new AbortController();
    const abort = (reason: StepError) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    const timer = setTimeout(() => abort(new StepTimeoutError(step.timeoutMs)), step.timeoutMs);
    const unwatch = deps.cancels.watch(runId, () => abort(new StepCancelledError()));
    const sink = new LogSink((stream, text) => store.appendLog(runId, stepId, stream, text), mask, abort, {
      maxBytes: deps.limits.maxLogBytes,
    });
    let result: StepResult | undefined;
    let thrown: unknown;
    try {
      result = await executor.run(execution, {
        signal: controller.signal,
        log: (stream, chunk) => sink.push(stream, chunk),
        progress: (percent, message) => {
          void store
            .event(runId, { type: 'step.progress', step: stepId, percent, message: message && mask(message) })
            .catch((err) => logger.warn({ err, runId, stepId }, 'could not publish progress'));
        },
      });
    } catch (err) {
      thrown = err;
    } finally {
      clearTimeout(timer);
      unwatch();
    }
    await sink.close();

    const finishedAt = now();
    const reason = controller.signal.aborted ? (controller.signal.reason as StepError) : undefined;
    const exitCode = result?.exitCode ?? null;
    const succeeded = !reason && !thrown && !result?.error && exitCode === 0;
    if (succeeded) {
      const outputs = maskDeep(result!.outputs, mask);
      await store.transition(
        runId,
        stepId,
        'succeeded',
        { ...base, startedAt, finishedAt, exitCode, outputs },
        {
          type: 'step.succeeded',
          step: stepId,
          exitCode,
          attempt,
        },
        sp.dependents,
      );
      return { ...(await conclude(job, 'succeeded')), exitCode };
    }

    const error: SerializedError & { retriable?: boolean } = reason
      ? { ...serializeError(reason), retriable: reason.retriable }
      : thrown
        ? { ...serializeError(thrown), retriable: thrown instanceof StepError ? thrown.retriable : true }
        : (result?.error ?? {
            code: 'exit_code',
            message: result?.signal ? `killed by ${result.signal}` : `exited with code ${exitCode}`,
          });
    const details = { startedAt, exitCode, signal: result?.signal ?? null };
    if (reason instanceof StepCancelledError) {
      await store.transition(
        runId,
        stepId,
        'cancelled',
        { ...base, ...details, finishedAt, error },
        {
          type: 'step.failed',
          step: stepId,
          error,
          cancelled: true,
        },
        sp.dependents,
      );
      return conclude(job, 'cancelled', error);
    }
    const { retriable = true, ...plain } = error;
    const masked = maskDeep(plain, mask);
    if (retriable && attempt < step.retries.attempts && !(reason instanceof OutputLimitError)) {
      await store.transition(
        runId,
        stepId,
        'queued',
        { ...base, ...details, finishedAt, error: masked },
        {
          type: 'step.retrying',
          step: stepId,
          attempt,
          nextAttempt: attempt + 1,
          error: masked,
        },
      );
      throw new Error(masked.message);
    }
    return fail(masked, details);
  };
}

function now(): string {
  return new Date().toISOString();
}
