/**
 * What a worker derives once per run from its immutable meta and keeps in a small LRU: parsed
 * expressions, who depends on whom, which other steps each step reads.
 */
import type { Expr } from '@actions/expressions';
import {
  ancestors,
  gateJobId,
  parseExpression,
  primaryParents,
  type References,
  type RunMeta,
  references,
  type Step,
  splitTemplate,
} from '../flows/index.ts';
import type { Masker } from './mask.ts';

/** Parsed expressions of one step. */
export interface StepPlan {
  step: Step;
  condition: Expr;
  /** `command.exprs[n]`, parsed. */
  commandExprs: Expr[];
  /** Env values as template pieces: literal text or a parsed expression. */
  env: Array<[string, Array<string | Expr>]>;
  cwd?: Array<string | Expr>;
  /** Steps whose state this step reads: needs, `steps.<id>` references, and ancestors for failure(). */
  reads: string[];
  /**
   * Whether the step reads the details (outputs) of `reads`: its expressions use `steps`, or it
   * is a function, which gets them all as `ctx.steps`. Otherwise only statuses are read.
   */
  readsDetails: boolean;
  /** Secret names referenced by this step's expressions. */
  secrets: string[];
  /** Steps that need this one, with their needs (the store queues them when ready). */
  dependents: Array<{ id: string; needs: string[] }>;
  /** Job ids of the gates this step promotes when it ends (its extra `needs` edges). */
  gates: string[];
}

/** A run's derived plan. */
export interface RunPlan {
  meta: RunMeta;
  /** Workflow-level env as template pieces. */
  env: Array<[string, Array<string | Expr>]>;
  steps: Map<string, StepPlan>;
  /**
   * Every secret any step of the run reads: each step masks them all, since a value one step
   * used can reach another's output through the shared workspace.
   */
  secrets: string[];
  /**
   * The values of `secrets` and their masker, read once per run on this worker (the plan lives
   * in a bounded cache and is dropped when the run ends); unset until a step needs them and
   * again after a failed read.
   */
  secretValues?: Promise<RunSecrets>;
}

/** A run's secret values (by name; missing ones absent) and the masker of all of them. */
export interface RunSecrets {
  known: Record<string, string>;
  mask: Masker;
}

function template(text: string, refs: References): Array<string | Expr> {
  return splitTemplate(text).map((segment) => {
    if (segment.kind === 'text') return segment.value;
    const expr = parseExpression(segment.source);
    references(expr, refs);
    return expr;
  });
}

function secretNames(exprs: Expr[]): string[] {
  const names = new Set<string>();
  // `secrets.NAME` parses to IndexAccess(ContextAccess(secrets), 'NAME'); walk the printed form.
  for (const expr of exprs) collectSecrets(expr, names);
  return [...names];
}

function collectSecrets(node: unknown, into: Set<string>): void {
  if (!node || typeof node !== 'object') return;
  const n = node as Record<string, unknown>;
  const base = n.expr as Record<string, unknown> | undefined;
  const index = n.index as { literal?: { coerceString?: () => string } } | undefined;
  if (
    base &&
    (base.name as { lexeme?: string } | undefined)?.lexeme === 'secrets' &&
    index?.literal?.coerceString
  ) {
    into.add(index.literal.coerceString());
  }
  for (const value of Object.values(n)) {
    if (Array.isArray(value)) value.forEach((v) => collectSecrets(v, into));
    else if (value && typeof value === 'object' && !('lexeme' in value)) collectSecrets(value, into);
  }
}

/** Derives a run's plan from its meta. */
export function buildPlan(meta: RunMeta): RunPlan {
  const workflow = meta.definition;
  const graph = new Map(workflow.order.map((id) => [id, workflow.steps[id]!.needs]));
  const dependents = new Map<string, Array<{ id: string; needs: string[] }>>();
  for (const id of workflow.order) {
    for (const need of workflow.steps[id]!.needs) {
      const list = dependents.get(need) ?? [];
      list.push({ id, needs: workflow.steps[id]!.needs });
      dependents.set(need, list);
    }
  }
  // Most steps share their condition (`success()`): each distinct source is parsed once.
  const conditions = new Map<string, Expr>();
  const parents = primaryParents(workflow);
  const workflowRefs: References = { steps: new Set(), contexts: new Set(), functions: new Set() };
  const env = Object.entries(workflow.env).map(
    ([k, v]) => [k, template(v, workflowRefs)] as [string, Array<string | Expr>],
  );
  const workflowExprs = env.flatMap(([, parts]) => parts.filter((p): p is Expr => typeof p !== 'string'));

  const steps = new Map<string, StepPlan>();
  for (const id of workflow.order) {
    const step = workflow.steps[id]!;
    const refs: References = { steps: new Set(), contexts: new Set(), functions: new Set() };
    const condition = conditions.get(step.if) ?? parseExpression(step.if);
    conditions.set(step.if, condition);
    references(condition, refs);
    const commandExprs = (step.command?.exprs ?? []).map((source) => {
      const expr = parseExpression(source);
      references(expr, refs);
      return expr;
    });
    const stepEnv = Object.entries(step.env).map(
      ([k, v]) => [k, template(v, refs)] as [string, Array<string | Expr>],
    );
    const cwd = step.cwd !== undefined ? template(step.cwd, refs) : undefined;
    const reads = new Set([...step.needs, ...refs.steps]);
    if (refs.functions.has('failure')) for (const a of ancestors(graph, id)) reads.add(a);
    const all = [
      condition,
      ...commandExprs,
      ...workflowExprs,
      ...[...stepEnv.map(([, p]) => p), cwd ?? []].flat().filter((p): p is Expr => typeof p !== 'string'),
    ];
    steps.set(id, {
      step,
      condition,
      commandExprs,
      env: stepEnv,
      cwd,
      reads: [...reads],
      readsDetails:
        step.function !== undefined || refs.contexts.has('steps') || workflowRefs.contexts.has('steps'),
      secrets: secretNames(all),
      dependents: dependents.get(id) ?? [],
      gates: (dependents.get(id) ?? [])
        .filter((d) => parents.get(id) !== d.id)
        .map((d) => gateJobId(meta.id, id, d.id)),
    });
  }
  return { meta, env, steps, secrets: [...new Set([...steps.values()].flatMap((sp) => sp.secrets))] };
}

/**
 * A small LRU of run plans: a worker sees the same run for each of its steps. Loads are shared:
 * when a new run's first steps arrive together (up to the worker's concurrency), one of them
 * reads and parses the run's meta and the others wait for it.
 */
export class PlanCache {
  private readonly plans = new Map<string, RunPlan>();
  private readonly loading = new Map<string, Promise<RunPlan>>();
  constructor(private readonly max = 256) {}

  get(runId: string): RunPlan | undefined {
    const plan = this.plans.get(runId);
    if (plan) {
      this.plans.delete(runId);
      this.plans.set(runId, plan);
    }
    return plan;
  }

  /** The cached plan, or the one `load` yields (a single load per run at a time). */
  async getOrLoad(runId: string, load: () => Promise<RunMeta>): Promise<RunPlan> {
    const cached = this.get(runId);
    if (cached) return cached;
    let pending = this.loading.get(runId);
    if (!pending) {
      pending = load()
        .then((meta) => this.add(meta))
        .finally(() => this.loading.delete(runId));
      this.loading.set(runId, pending);
    }
    return pending;
  }

  add(meta: RunMeta): RunPlan {
    const plan = buildPlan(meta);
    this.plans.set(meta.id, plan);
    if (this.plans.size > this.max) this.plans.delete(this.plans.keys().next().value!);
    return plan;
  }

  /** Forgets a finished run. */
  drop(runId: string): void {
    this.plans.delete(runId);
  }
}
