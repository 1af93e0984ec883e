/**
 * The step pipeline, read top to bottom: begin (the record's view: already final, interrupted,
 * to decide, started) → decide (`if`) → prepare (secrets, expressions) → attempt (the executor)
 * → judge (the attempt's result as a `StepOutcome`). The processor records the outcome and hands
 * it to BullMQ through step-outcome.ts, the only place a step job ends.
 *
 * A step on a group of hosts fans out instead (fan-out.ts); its host instances run the same
 * stages in instance-processor.ts.
 */
import type { Job } from 'bullmq';
import type { SerializedError } from '../errors.ts';
import { type StepJobData, truthy } from '../flows/index.ts';
import type { StepDetails } from '../store/index.ts';
import { runAttempt } from './attempt.ts';
import { evaluateIn, type Scope } from './expression-context.ts';
import { aggregate, closeHosts, fanOut } from './fan-out.ts';
import { settleNeeds } from './reconciler.ts';
import type { RunPlan, StepPlan } from './run-plan.ts';
import { equip, judge, type Prepared, prepare } from './stages.ts';
import type { StepProcessorDeps } from './step-deps.ts';
import { endJob, recordStep, type StepJobResult, type StepOutcome } from './step-outcome.ts';

export type { SecretSource } from './step-deps.ts';
export type { StepJobResult } from './step-outcome.ts';

/** How long a step woken before its needs' statuses landed waits for them before reconciling. */
const EARLY_WAIT_MS = 10_000;

/** Builds the BullMQ processor of step queues (instances of fan-out steps included). */
export function createStepProcessor(
  deps: StepProcessorDeps,
  processInstance: (job: Job<StepJobData>, token?: string, signal?: AbortSignal) => Promise<StepJobResult>,
) {
  return async function processStep(
    job: Job<StepJobData>,
    token?: string,
    signal?: AbortSignal,
  ): Promise<StepJobResult> {
    if (job.data.host !== undefined) return processInstance(job, token, signal);
    return endJob(
      deps,
      job,
      token,
      async (plan, sp) => {
        const outcome = await stepOutcome(deps, job, token, signal, plan, sp);
        return sp.step.hosts === undefined ? outcome : closeHosts(deps, job, outcome);
      },
      (sp, outcome) => recordStep(deps, job, sp, outcome),
    );
  };
}

/** Runs the stages and says how the job ends. Throws only for what the stages did not foresee. */
async function stepOutcome(
  deps: StepProcessorDeps,
  job: Job<StepJobData>,
  token: string | undefined,
  signal: AbortSignal | undefined,
  plan: RunPlan,
  sp: StepPlan,
): Promise<StepOutcome> {
  const step = sp.step;
  const base: StepDetails = {
    executor: step.executor,
    attempts: 0,
    ...(step.continueOnError && { continueOnError: true }),
  };
  if (job.data.phase === 'fanned-out') return aggregate(deps, job, sp);

  // A hosts step reads the inventory anyway once it starts: read it alongside its begin.
  const catalog = step.hosts !== undefined ? deps.inventory?.catalog() : undefined;
  catalog?.catch(() => undefined); // a failed read is read again by the fan-out

  // begin
  let start = await begin(deps, sp, job.data.runId, step.if === 'success()' ? 'auto' : 'read');
  if (start.outcome === 'final') return { kind: 'concluded', status: start.current! };
  if (start.outcome === 'interrupted') {
    const error = {
      code: 'worker_lost',
      message: `its worker died ${start.interruptions} times while running it`,
    };
    return { kind: 'failed', error, details: { ...base, attempts: start.attempt, error, finishedAt: now() } };
  }

  // decide
  let prepared: Prepared | undefined;
  if (start.outcome === 'decide') {
    prepared = await prepare(deps, plan, sp, start.snapshot, start.attempt + 1);
    if ('error' in prepared) {
      const error = prepared.error;
      return {
        kind: 'failed',
        error,
        details: { ...base, attempts: start.attempt, error, finishedAt: now() },
      };
    }
    const decided = decide(sp, start, base, prepared.scope);
    if (decided) return decided;
    start = await begin(deps, sp, job.data.runId, 'force');
    if (start.outcome === 'final') return { kind: 'concluded', status: start.current! };
  }
  const attempt = start.attempt;
  const details: StepDetails = { ...base, attempts: attempt, startedAt: start.startedAt };
  const failed = (error: SerializedError): StepOutcome => ({
    kind: 'failed',
    attempt,
    error,
    details: { ...details, error, finishedAt: now() },
  });

  // prepare
  prepared ??= await prepare(deps, plan, sp, start.snapshot, attempt);
  if ('error' in prepared) return failed(prepared.error);
  if (step.hosts !== undefined) {
    const { snapshot } = start;
    return fanOut(deps, job, {
      token,
      signal,
      plan,
      sp,
      details,
      afterCancel: snapshot.cancelRequested,
      snapshot,
      catalog,
    });
  }
  const equipped = equip(deps, plan, sp, prepared, attempt, step.executor);
  if ('error' in equipped) return failed(equipped.error);

  // attempt
  const result = await runAttempt({
    store: deps.store,
    cancels: deps.cancels,
    logger: deps.logger,
    ...equipped,
    timeoutMs: step.timeoutMs,
    // A step that starts after a cancel (an always() cleanup) is not cancelled by it.
    watch: start.snapshot.cancelRequested ? [] : [job.data.runId],
    mask: prepared.mask,
    maxLogBytes: deps.limits.maxLogBytes,
    interrupt: signal,
  });

  // judge
  return judge(result, details, attempt, job);
}

type Begun = Awaited<ReturnType<StepProcessorDeps['store']['startStep']>>;

/**
 * The record's view of the step, waiting out needs whose final status has not landed yet and
 * reconciling needs whose jobs ended without one (BullMQ failed them, or their write was lost).
 */
async function begin(
  deps: StepProcessorDeps,
  sp: StepPlan,
  runId: string,
  mode: 'auto' | 'read' | 'force',
): Promise<Begun> {
  const step = sp.step;
  const once = () =>
    deps.store.startStep(runId, step.id, sp.reads, {
      needs: step.needs.length,
      mode,
      executor: step.executor,
      continueOnError: step.continueOnError,
      maxInterruptions: deps.limits.maxInterruptions,
      details: sp.readsDetails,
    });
  let start = await once();
  const deadline = Date.now() + EARLY_WAIT_MS;
  for (let wait = 5; start.outcome === 'early'; wait = Math.min(wait * 2, 500)) {
    const late = step.needs.filter((id) => !isFinal(start.snapshot.status[id]));
    await settleNeeds(deps, runId, late, Date.now() > deadline);
    await new Promise((resolve) => setTimeout(resolve, wait));
    start = await once();
  }
  if (start.outcome === 'missing') throw new Error(`run ${runId} has no record`);
  return start;
}

/** GitHub's `if`, evaluated on the needs' recorded states: an outcome when the step does not run. */
function decide(sp: StepPlan, start: Begun, base: StepDetails, scope: Scope): StepOutcome | undefined {
  const { snapshot } = start;
  let run: boolean;
  try {
    run = truthy(evaluateIn(sp.condition, scope));
  } catch (err) {
    const error = { code: 'expression_error', message: (err as Error).message };
    return { kind: 'failed', error, details: { ...base, error, finishedAt: now() } };
  }
  if (run) return undefined;
  if (snapshot.cancelRequested && start.attempt > 0) {
    // It ran before and was waiting to retry: the cancel stopped it, so it is cancelled.
    const error = { code: 'cancelled', message: 'run cancelled while the step waited to retry' };
    return {
      kind: 'cancelled',
      error,
      details: { ...base, attempts: start.attempt, error, finishedAt: now() },
    };
  }
  const reason = snapshot.cancelRequested ? 'run cancelled' : `condition "${sp.step.if}" is false`;
  return { kind: 'skipped', reason, details: { ...base, attempts: start.attempt } };
}

function isFinal(status: string | undefined): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'skipped' || status === 'cancelled';
}

function now(): string {
  return new Date().toISOString();
}
