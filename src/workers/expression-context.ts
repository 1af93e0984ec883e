/**
 * The data expressions read while a step starts (`inputs`, `env`, `secrets`, `steps`, `run`,
 * `trigger`), GitHub's status-function semantics, and template evaluation.
 */
import type { Expr } from '@actions/expressions';
import { evaluate, PreparedContexts, type StatusView, toText } from '../flows/index.ts';
import type { StepSnapshot } from '../store/index.ts';
import type { RunPlan, StepPlan } from './run-plan.ts';

/**
 * What an expression of one attempt reads: the contexts and the status functions. One scope
 * serves `if`, `run`, `env` and `cwd`, so `cancelled()` or `failure()` reads the same in each.
 */
export interface Scope {
  contexts: Record<string, unknown>;
  status: StatusView;
  /** `contexts` converted for the evaluator, once for every expression that reads them. */
  prepared?: PreparedContexts;
}

/** Evaluates one parsed expression in a scope. */
export function evaluateIn(expr: Expr, scope: Scope): unknown {
  scope.prepared ??= new PreparedContexts(scope.contexts);
  return evaluate(expr, scope.prepared, scope.status);
}

/** Evaluates template pieces to a string. */
export function renderTemplate(parts: Array<string | Expr>, scope: Scope): string {
  let out = '';
  for (const part of parts) out += typeof part === 'string' ? part : toText(evaluateIn(part, scope));
  return out;
}

/** True when a step's need counts as a success for `success()`. */
function ok(snapshot: StepSnapshot, id: string): boolean {
  const status = snapshot.status[id];
  return status === 'succeeded' || (status === 'failed' && snapshot.details[id]?.continueOnError === true);
}

/** GitHub Actions job semantics for `success()`, `failure()`, `cancelled()`. */
export function statusView(sp: StepPlan, snapshot: StepSnapshot): StatusView {
  const cancelled = snapshot.cancelRequested;
  return {
    cancelled,
    success: !cancelled && sp.step.needs.every((id) => ok(snapshot, id)),
    // `reads` holds every ancestor when the condition calls failure().
    failure: sp.reads.some(
      (id) => snapshot.status[id] === 'failed' && snapshot.details[id]?.continueOnError !== true,
    ),
  };
}

/** Builds the scope of one attempt; `env` is filled in as the workflow and step env resolve. */
export function buildScope(
  plan: RunPlan,
  sp: StepPlan,
  snapshot: StepSnapshot,
  attempt: number,
  secrets: Record<string, string>,
): Scope {
  const steps: Record<string, unknown> = {};
  for (const id of sp.reads) {
    steps[id] = { status: snapshot.status[id] ?? 'pending', outputs: snapshot.details[id]?.outputs ?? {} };
  }
  const contexts: Record<string, unknown> = {
    inputs: plan.meta.inputs,
    trigger: plan.meta.trigger,
    run: { id: plan.meta.id, attempt },
    secrets,
    steps,
    env: {},
  };
  const scope: Scope = { contexts, status: statusView(sp, snapshot) };
  const env: Record<string, string> = {};
  for (const [name, parts] of plan.env) env[name] = renderTemplate(parts, scope);
  // The step's env reads the workflow's; each change of the contexts drops their converted copy.
  if (plan.env.length) {
    contexts.env = { ...env };
    scope.prepared = undefined;
  }
  for (const [name, parts] of sp.env) env[name] = renderTemplate(parts, scope);
  contexts.env = env;
  scope.prepared = undefined;
  return scope;
}
