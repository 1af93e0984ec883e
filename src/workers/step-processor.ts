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
import type { EventInput, RunStore, StepDetails, StepStatus } from '../store/index.ts';
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

/** How long a step woken before its needs' statuses landed waits for them (see start-step.lua). */
const EARLY_WAIT_MS = 30_000;

/** Builds the BullMQ processor for step queues. */
export function createStepProcessor(deps: StepProcessorDeps) {
  const { store, logger } = deps;

  /** The run's plan, read from Redis (or its root job) the first time this worker sees the run. */
  async function planFor(runId: string): Promise<RunPlan> {
    const cached = deps.plans.get(runId);
    if (cached) return cached;
    let meta = (await store.snapshot(runId, [], true)).meta;
    if (!meta) {
      meta = await deps.loadMeta(runId);
      if (!meta) throw new UnrecoverableError(`run ${runId} has neither a record nor a root job`);
      await store.announce(meta);
    }
    return deps.plans.add(meta);
  }

  /**
   * Records a final status and promotes the step's gates without waiting for the replies: BullMQ's
   * moveToFinished follows on the same connection, so Redis applies these writes first and the
   * step's dependents never wait a round trip for them. (Should a write ever land late, a
   * dependent's start-step sees its need not final and reads again; a gate looks again too.)
   */
  function finish(
    job: Job<StepJobData>,
    sp: StepPlan,
    status: StepStatus,
    details: StepDetails,
    event: EventInput,
  ): void {
    const { runId, stepId } = job.data;
    store
      .transition(runId, stepId, status, details, event, sp.dependents)
      .catch((err) => logger.error({ err, runId, stepId, status }, 'could not record step status'));
    promoteGates(deps.gateQueue, job.data.gates).catch((err) =>
      logger.error({ err, runId, stepId }, 'could not promote gates'),
    );
  }

  /** Ends a step job whose outcome is already recorded (a retry after a crash, or a skip). */
  async function conclude(
    job: Job<StepJobData>,
    status: string,
    error?: SerializedError,
  ): Promise<StepJobResult> {
    await promoteGates(deps.gateQueue, job.data.gates);
    return settle(status, error);
  }

  function settle(status: string, error?: SerializedError): StepJobResult {
    if (status === 'failed' || status === 'cancelled')
      throw new UnrecoverableError(error?.message ?? `step ${status}`);
    return { status: status === 'skipped' ? 'skipped' : 'succeeded' };
  }

  return async function processStep(job: Job<StepJobData>): Promise<StepJobResult> {
    const { runId, stepId } = job.data;
    const plan = await planFor(runId);
    const sp = plan.steps.get(stepId);
    if (!sp) throw new UnrecoverableError(`run ${runId} has no step "${stepId}"`);
    const step = sp.step;
    const attempt = job.attemptsMade + 1;
    const base: StepDetails = {
      executor: step.executor,
      attempts: attempt,
      ...(step.continueOnError && { continueOnError: true }),
    };
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
    if (start.outcome === 'final') return conclude(job, start.current!, snapshot.details[stepId]?.error);

    const secretValues = sp.secrets.length && deps.secrets ? await deps.secrets.get(sp.secrets) : {};
    const mask = createMasker(Object.values(secretValues));
    const fail = async (error: SerializedError, details: Partial<StepDetails> = {}) => {
      const masked = maskDeep(error, mask);
      finish(
        job,
        sp,
        'failed',
        { ...base, ...details, error: masked, finishedAt: now() },
        {
          type: 'step.failed',
          step: stepId,
          error: masked,
          exitCode: details.exitCode,
          attempt,
        },
      );
      return settle('failed', masked);
    };

    let contexts: Record<string, unknown>;
    try {
      const missing = sp.secrets.filter((name) => secretValues[name] === undefined);
      if (missing.length)
        throw new StepError('secret_missing', `secret not set: ${missing.join(', ')}`, false);
      contexts = buildContexts(plan, sp, snapshot, attempt, secretValues);
      if (start.outcome === 'decide') {
        // GitHub's `if` semantics, evaluated with the needs' recorded states.
        if (!truthy(evaluate(sp.condition, contexts, statusView(sp, snapshot)))) {
          const reason = snapshot.cancelRequested ? 'run cancelled' : `condition "${step.if}" is false`;
          finish(
            job,
            sp,
            'skipped',
            { ...base, attempts: 0 },
            { type: 'step.skipped', step: stepId, reason },
          );
          return settle('skipped');
        }
        if (!(await store.transition(runId, stepId, 'running', { ...base, startedAt }, startedEvent))) {
          return conclude(job, (await store.snapshot(runId, [stepId], false)).status[stepId] ?? 'failed');
        }
      }
    } catch (err) {
      return fail(
        err instanceof StepError
          ? serializeError(err)
          : { code: 'expression_error', message: (err as Error).message },
      );
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

    const controller = new AbortController();
    const abort = (reason: StepError) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    const timer = setTimeout(() => abort(new StepTimeoutError(step.timeoutMs)), step.timeoutMs);
    // A step that starts after a cancel (an always() cleanup) is not cancelled by it.
    const unwatch = snapshot.cancelRequested
      ? () => {}
      : deps.cancels.watch(runId, () => abort(new StepCancelledError()));
    const progress = (percent: number, message?: string) =>
      store
        .event(runId, {
          type: 'step.progress',
          step: stepId,
          percent,
          ...(message && { message: mask(message) }),
        })
        .catch((err) => logger.warn({ err, runId, stepId }, 'could not publish progress'));
    const sink = new LogSink(
      (stream, text) => store.appendLog(runId, stepId, stream, text),
      mask,
      abort,
      { maxBytes: deps.limits.maxLogBytes },
      progress,
    );
    let result: StepResult | undefined;
    let thrown: unknown;
    try {
      result = await executor.run(execution, {
        signal: controller.signal,
        log: (stream, chunk) => sink.push(stream, chunk),
        progress: (percent, message) => void progress(percent, message),
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
    if (!reason && !thrown && !result?.error && exitCode === 0) {
      const outputs = maskDeep(result!.outputs, mask);
      finish(
        job,
        sp,
        'succeeded',
        { ...base, startedAt, finishedAt, exitCode, outputs },
        {
          type: 'step.succeeded',
          step: stepId,
          exitCode,
          attempt,
        },
      );
      return { status: 'succeeded', exitCode };
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
    const { retriable = true, ...plain } = error;
    const masked = maskDeep(plain, mask);
    if (reason instanceof StepCancelledError) {
      finish(
        job,
        sp,
        'cancelled',
        { ...base, ...details, finishedAt, error: masked },
        {
          type: 'step.failed',
          step: stepId,
          error: masked,
          cancelled: true,
        },
      );
      return settle('cancelled', masked);
    }
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
