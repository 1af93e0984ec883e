/**
 * The stages a step and a host instance share around their attempt: prepare (the run's secrets,
 * the expression scope, the masker), equip (the executor and the attempt's execution) and judge
 * (the attempt's result as the job's outcome). step-processor.ts and instance-processor.ts run
 * them in their own pipelines.
 */
import type { Job } from 'bullmq';
import { ConveyorError, type SerializedError, StepError, serializeError } from '../errors.ts';
import type { StepJobData } from '../flows/index.ts';
import type { StepDetails, StepSnapshot } from '../store/index.ts';
import { type AttemptOutcome, buildExecution } from './attempt.ts';
import type { Executor, StepExecution } from './executor.ts';
import { buildScope, type Scope } from './expression-context.ts';
import { createMasker, type Masker } from './mask.ts';
import type { RunPlan, RunSecrets, StepPlan } from './run-plan.ts';
import type { StepProcessorDeps } from './step-deps.ts';
import type { StepOutcome } from './step-outcome.ts';

/** What an attempt needs before it runs, or why it cannot. */
export type Prepared =
  | { scope: Scope; secrets: Record<string, string>; mask: Masker }
  | { error: SerializedError };

/** What an attempt needs before it runs: secret values, the expression scope and a masker. */
export async function prepare(
  deps: StepProcessorDeps,
  plan: RunPlan,
  sp: StepPlan,
  snapshot: StepSnapshot,
  attempt: number,
): Promise<Prepared> {
  let known: Record<string, string> = {};
  let mask = createMasker([]);
  try {
    // The values of every secret of the run, for masking; the step's own, for its expressions.
    ({ known, mask } = await runSecrets(deps, plan));
    const missing = sp.secrets.filter((name) => known[name] === undefined);
    if (missing.length) throw new StepError('secret_missing', `secret not set: ${missing.join(', ')}`, false);
    const secrets = Object.fromEntries(sp.secrets.map((name) => [name, known[name]!]));
    const scope = buildScope(plan, sp, snapshot, attempt, secrets);
    return { scope, secrets, mask };
  } catch (err) {
    const error =
      err instanceof ConveyorError
        ? serializeError(err)
        : { code: 'expression_error', message: (err as Error).message };
    return { error: { ...error, message: mask(error.message) } };
  }
}

/** The attempt's executor and execution, or why it cannot run. */
export type Equipped = { executor: Executor; execution: StepExecution } | { error: SerializedError };

/**
 * The executor named `executorName` and the attempt's execution (its command, env and inputs
 * with expressions evaluated, for `host` on a host instance), or the error that fails it.
 */
export function equip(
  deps: StepProcessorDeps,
  plan: RunPlan,
  sp: StepPlan,
  prepared: Exclude<Prepared, { error: SerializedError }>,
  attempt: number,
  executorName: string,
  host?: string,
): Equipped {
  const executor = deps.executors.get(executorName);
  if (!executor)
    return { error: { code: 'no_executor', message: `this worker has no "${executorName}" executor` } };
  try {
    const { scope, secrets } = prepared;
    const execution = buildExecution(plan, sp, scope, attempt, secrets, deps.limits.maxOutputBytes, host);
    return { executor, execution };
  } catch (err) {
    return { error: { code: 'expression_error', message: prepared.mask((err as Error).message) } };
  }
}

/** The run's secret values and masker, read and built once per run (not once per step). */
function runSecrets(deps: StepProcessorDeps, plan: RunPlan): Promise<RunSecrets> {
  if (!plan.secrets.length || !deps.secrets) return Promise.resolve({ known: {}, mask: createMasker([]) });
  if (!plan.secretValues) {
    const loading = deps.secrets.get(plan.secrets).then((known) => ({
      known,
      mask: createMasker(Object.values(known)),
    }));
    plan.secretValues = loading;
    // A failed read is not kept: the next step reads again.
    loading.catch(() => {
      if (plan.secretValues === loading) plan.secretValues = undefined;
    });
  }
  return plan.secretValues;
}

/** The attempt's result as the job's outcome. */
export function judge(
  result: AttemptOutcome,
  details: StepDetails,
  attempt: number,
  job: Job<StepJobData>,
): StepOutcome {
  if (result.kind === 'succeeded') {
    const { exitCode, outputs, finishedAt, events } = result;
    const emitted = events.length ? { emitted: events.map((e) => e.type) } : {};
    return {
      kind: 'succeeded',
      attempt,
      events,
      details: { ...details, finishedAt, exitCode, outputs, ...emitted },
    };
  }
  const failure = { ...details, ...result.details, error: result.error };
  if (result.kind === 'cancelled')
    return { kind: 'cancelled', attempt, error: result.error, details: failure };
  if (result.kind === 'interrupted')
    return { kind: 'handed-back', attempt, error: result.error, details: failure };
  // BullMQ keeps the count of failed attempts; crash re-runs and hand-backs do not spend them.
  if (result.retriable && !result.limit && job.attemptsMade + 1 < (job.opts.attempts ?? 1))
    return { kind: 'retry', attempt, error: result.error, details: failure };
  return { kind: 'failed', attempt, error: result.error, details: failure };
}
