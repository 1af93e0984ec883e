/**
 * One executor attempt, the same for a step and for one host instance of a fan-out step: builds
 * the execution from the resolved expressions, wires timeout, cancel and the log cap to one abort
 * signal, streams logs through a `LogSink`, and turns what happened into an `AttemptOutcome`.
 */
import type { Logger } from 'pino';
import {
  type SerializedError,
  StepCancelledError,
  StepError,
  StepInterruptedError,
  StepTimeoutError,
  serializeError,
} from '../errors.ts';
import { exprVar, toText } from '../flows/index.ts';
import type { RunStore } from '../store/index.ts';
import type { CancelWatch } from './cancel-watch.ts';
import type { EmittedEvent, Executor, StepExecution, StepResult } from './executor.ts';
import { evaluateIn, renderTemplate, type Scope } from './expression-context.ts';
import { LogSink } from './log-sink.ts';
import { setLongTimeout } from './long-timer.ts';
import { type Masker, maskDeep } from './mask.ts';
import type { RunPlan, StepPlan } from './run-plan.ts';

/** How an attempt ended. `details` feed the step's (or instance's) record. */
export type AttemptOutcome =
  | {
      kind: 'succeeded';
      exitCode: number | null;
      outputs: Record<string, unknown>;
      events: EmittedEvent[];
      finishedAt: string;
    }
  | {
      kind: 'cancelled' | 'failed' | 'interrupted';
      error: SerializedError;
      retriable: boolean;
      limit: boolean;
      details: FailureDetails;
    };

/** What a failed attempt records. */
export interface FailureDetails {
  exitCode: number | null;
  signal: string | null;
  finishedAt: string;
}

/** Executor-specific options of a step: only what that executor reads. */
export function executorOptions(sp: StepPlan, host?: string): Record<string, unknown> {
  const step = sp.step;
  if (step.executor === 'ssh') return { host, sudo: step.sudo };
  if (step.executor === 'vm') {
    const { timeout: _folded, ...vm } = step.vm ?? {}; // the vm timeout is already the step's timeout
    return vm;
  }
  return {};
}

/** The execution of one attempt; throws when an expression cannot be evaluated. */
export function buildExecution(
  plan: RunPlan,
  sp: StepPlan,
  scope: Scope,
  attempt: number,
  secretValues: Record<string, string>,
  maxOutputBytes: number,
  host?: string,
): StepExecution {
  const { id: runId } = plan.meta;
  const stepId = sp.step.id;
  const { contexts } = scope;
  const env: Record<string, string> = { ...(contexts.env as Record<string, string>) };
  sp.commandExprs.forEach((expr, n) => {
    env[exprVar(n)] = toText(evaluateIn(expr, scope));
  });
  Object.assign(env, {
    CONVEYOR_RUN_ID: runId,
    CONVEYOR_STEP_ID: stepId,
    CONVEYOR_RUN_ATTEMPT: String(attempt),
  });
  if (host) env.CONVEYOR_HOST = host;
  return {
    runId,
    stepId,
    attempt,
    command: sp.step.command?.text,
    function: sp.step.function,
    env,
    cwd: sp.cwd ? renderTemplate(sp.cwd, scope) : undefined,
    secrets: Object.values(secretValues),
    idempotencyKey: host ? `${runId}.${stepId}@${host}` : `${runId}.${stepId}`,
    limits: { maxOutputBytes },
    options: executorOptions(sp, host),
    context: {
      inputs: plan.meta.inputs,
      steps: contexts.steps,
      env,
      secrets: secretValues,
      run: { id: runId, attempt },
    },
  };
}

/** What `runAttempt` needs besides the execution. */
export interface AttemptParams {
  store: RunStore;
  cancels: CancelWatch;
  logger: Logger;
  executor: Executor;
  execution: StepExecution;
  timeoutMs: number;
  /** Cancel keys to watch (run id, `run/step` for fail-fast); none for a step started after a cancel. */
  watch: string[];
  mask: Masker;
  maxLogBytes: number;
  host?: string;
  /**
   * Aborted by the worker itself, with the reason `shutdown` (past its grace) or `lock_lost`:
   * the attempt is stopped and its outcome is `interrupted`.
   */
  interrupt?: AbortSignal;
}

/** Runs one attempt to its end and says how it went; never throws for a step failure. */
export async function runAttempt(p: AttemptParams): Promise<AttemptOutcome> {
  const { store, execution, mask, host } = p;
  const { runId, stepId } = execution;
  const controller = new AbortController();
  const abort = (reason: StepError) => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const clearTimer = setLongTimeout(() => abort(new StepTimeoutError(p.timeoutMs)), p.timeoutMs);
  const unwatch = p.watch.map((key) => p.cancels.watch(key, () => abort(new StepCancelledError())));
  const onInterrupt = () =>
    abort(
      p.interrupt!.reason === 'lock_lost'
        ? new StepInterruptedError('lock_lost', "the worker lost the job's lock to another worker")
        : new StepInterruptedError('shutdown', 'the worker shut down before the attempt ended'),
    );
  p.interrupt?.addEventListener('abort', onInterrupt, { once: true });
  if (p.interrupt?.aborted) onInterrupt();
  const progress = (percent: number, message?: string) =>
    store
      .event(runId, {
        type: 'step.progress',
        step: stepId,
        ...(host && { host }),
        percent,
        ...(message && { message: mask(message) }),
      })
      .catch((err) => p.logger.warn({ err, runId, stepId }, 'could not publish progress'));
  const sink = new LogSink(
    (stream, text) => store.appendLog({ runId, stepId, attempt: execution.attempt, host }, stream, text),
    mask,
    abort,
    { maxBytes: p.maxLogBytes },
    progress,
  );
  let result: StepResult | undefined;
  let thrown: unknown;
  try {
    result = await p.executor.run(execution, {
      signal: controller.signal,
      log: (stream, chunk) => sink.push(stream, chunk),
      progress: (percent, message) => void progress(percent, message),
    });
  } catch (err) {
    thrown = err;
  } finally {
    clearTimer();
    p.interrupt?.removeEventListener('abort', onInterrupt);
    for (const stop of unwatch) stop();
  }
  await sink.close();

  const finishedAt = new Date().toISOString();
  const reason = controller.signal.aborted ? (controller.signal.reason as StepError) : undefined;
  const exitCode = result?.exitCode ?? null;
  if (!reason && !thrown && !result?.error && exitCode === 0) {
    try {
      return {
        kind: 'succeeded',
        exitCode,
        outputs: maskDeep(result!.outputs, mask),
        events: maskDeep(result!.events, mask),
        finishedAt,
      };
    } catch (err) {
      // Too deep to mask: the step's outputs cannot be kept; it failed, with its attempt known.
      thrown = err;
    }
  }
  const error: SerializedError & { retriable?: boolean } = reason
    ? { ...serializeError(reason), retriable: reason.retriable }
    : thrown
      ? { ...serializeError(thrown), retriable: thrown instanceof StepError ? thrown.retriable : true }
      : (result?.error ?? {
          code: 'exit_code',
          message: result?.signal ? `killed by ${result.signal}` : `exited with code ${exitCode}`,
        });
  const { retriable = true, ...plain } = error;
  return {
    kind:
      reason instanceof StepCancelledError
        ? 'cancelled'
        : reason instanceof StepInterruptedError
          ? 'interrupted'
          : 'failed',
    error: maskDeep(plain, mask),
    retriable,
    limit: plain.code === 'output_limit',
    details: { exitCode, signal: result?.signal ?? null, finishedAt },
  };
}
