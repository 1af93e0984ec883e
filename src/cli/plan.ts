/**
 * `conveyor plan <file|name>`: the steps in order by stage (a stage's steps run in parallel),
 * each step's executor and hosts, and the expressions left to resolve at run time. A file is
 * planned offline with the engine's own dry-run logic; a name asks the API.
 */
import { existsSync } from 'node:fs';
import type { Plan } from '../client/index.ts';
import type { Workflow } from '../flows/index.ts';
import type { Command, Context } from './command.ts';
import { stringFlag } from './command.ts';
import { CliError, EXIT } from './errors.ts';
import { parseInputs } from './inputs.ts';
import type { Output } from './output.ts';
import { INVENTORY_FLAG } from './validate.ts';

/** `-i key=value`, shared with `run`. */
export const INPUT_FLAG = {
  input: { type: 'string', short: 'i', multiple: true, value: 'key=value', help: 'a run input (repeatable)' },
} as const;

/** An expression of a step (or of the workflow) that only a run can resolve. */
export interface RuntimeExpression {
  step?: string;
  field: string;
  expression: string;
}

/** Every `${{ }}` and non-default `if` of the workflow. */
export function runtimeExpressions(workflow: Workflow): RuntimeExpression[] {
  const found: RuntimeExpression[] = [];
  const templates = (text: string, field: string, step?: string) => {
    for (const m of text.matchAll(/\$\{\{([\s\S]*?)\}\}/g))
      found.push({ step, field, expression: m[1]!.trim() });
  };
  for (const [name, value] of Object.entries(workflow.env)) templates(value, `env.${name}`);
  if (workflow.concurrency) templates(workflow.concurrency.group, 'concurrency.group');
  for (const id of workflow.order) {
    const step = workflow.steps[id]!;
    if (step.if !== 'success()') found.push({ step: id, field: 'if', expression: step.if });
    for (const expression of step.command?.exprs ?? []) found.push({ step: id, field: 'run', expression });
    for (const [name, value] of Object.entries(step.env)) templates(value, `env.${name}`, id);
    if (step.cwd) templates(step.cwd, 'cwd', id);
  }
  const seen = new Set<string>();
  return found.filter((e) => {
    const key = `${e.step}\0${e.field}\0${e.expression}`;
    return !seen.has(key) && seen.add(key);
  });
}

/** Loads a file, or throws its problems as a usage error (printed by `main`). */
export async function checkedFile(ctx: Context, file: string) {
  const { formatProblem, inventoryCatalog, loadDefinition } = await import('./definitions.ts');
  const inventory = stringFlag(ctx.values, 'inventory') ?? ctx.config.CONVEYOR_INVENTORY;
  const hosts = await inventoryCatalog(inventory);
  const loaded = await loadDefinition(file, hosts);
  if (!loaded.workflow) {
    throw new CliError(`${file} is not a valid workflow`, EXIT.usage, {
      code: 'invalid_input',
      hint: loaded.problems.map(formatProblem).join('\n'),
      issues: loaded.problems.map((p) => ({ path: p.path, message: p.message })),
    });
  }
  return { ...loaded, workflow: loaded.workflow, hosts, inventoryGiven: inventory !== undefined };
}

/** Prints a plan (and its runtime expressions) as text or JSON. */
export function printPlan(out: Output, plan: Plan, expressions: RuntimeExpression[], source: string): void {
  out.result({ ...plan, expressions }, () => {
    out.line(
      `${out.paint('bold', plan.workflow)}${plan.version === null ? '' : ` v${plan.version}`} (${source})`,
    );
    if (Object.keys(plan.inputs).length) out.line(`inputs: ${JSON.stringify(plan.inputs)}`);
    const rows = plan.steps.map((s) => {
      const hosts = s.hosts
        ? `${s.hosts.join(', ') || '(none)'}${s.maxParallel ? ` (${s.maxParallel} at a time)` : ''}`
        : '';
      return [
        String((s.stage ?? 0) + 1),
        s.id,
        s.executor + (s.runsOn?.length ? ` [${s.runsOn.join(', ')}]` : ''),
        hosts,
        s.needs.join(', '),
        s.waiting ? out.paint('yellow', s.waiting) : '',
      ];
    });
    out.line();
    out.table(['stage', 'step', 'executor', 'hosts', 'needs', 'note'], rows);
    const stages = new Map<number, string[]>();
    for (const s of plan.steps) stages.set(s.stage ?? 0, [...(stages.get(s.stage ?? 0) ?? []), s.id]);
    const parallel = [...stages].filter(([, ids]) => ids.length > 1);
    out.line();
    out.line(
      parallel.length
        ? `in parallel: ${parallel.map(([stage, ids]) => `stage ${stage + 1} (${ids.join(', ')})`).join('; ')}`
        : 'in parallel: nothing (each stage has one step)',
    );
    if (expressions.length) {
      out.line('resolved at run time:');
      for (const e of expressions)
        out.line(`  ${e.step ? `${e.step}.` : ''}${e.field}: \${{ ${e.expression} }}`);
    } else out.line('resolved at run time: nothing');
  });
}

/** The command. */
export const plan: Command = {
  name: 'plan',
  summary: 'show what a run would do: stages, executors, hosts, runtime expressions',
  usage: 'plan <file|name> [-i key=value…] [--inventory <file>]',
  description: 'A file is planned offline (hosts from the inventory); a name is planned by the API.',
  args: [1, 1],
  flags: { ...INPUT_FLAG, ...INVENTORY_FLAG },
  async run(ctx) {
    const target = ctx.positionals[0]!;
    const pairs = (ctx.values.input as string[] | undefined) ?? [];
    if (isPath(target)) {
      const { workflow, inventoryGiven, hosts } = await checkedFile(ctx, target);
      const { runPlan } = await import('../api/dry-run.ts');
      let result: Plan;
      try {
        // Offline nothing is known of the workers; without an inventory, `hosts:` stays a name.
        const { steps, ...offline } = runPlan(
          workflow,
          null,
          parseInputs(pairs, workflow.inputs),
          hosts ?? { resolve: (n) => [n] },
          [],
        );
        result = { ...offline, steps: steps.map(({ waiting: _, ...s }) => s) };
      } catch (err) {
        throw inputsError(err);
      }
      printPlan(ctx.out, result, runtimeExpressions(workflow), `file ${target}`);
      if (!inventoryGiven && workflow.order.some((id) => workflow.steps[id]!.hosts)) {
        ctx.out.note('hosts: not resolved (no inventory: --inventory or CONVEYOR_INVENTORY)');
      }
      return EXIT.ok;
    }
    const client = ctx.client();
    const stored = await client.workflows.get(target);
    const workflow = await storedWorkflow(stored.definition);
    const result = await client.workflows.plan(target, { inputs: parseInputs(pairs, workflow.inputs) });
    printPlan(ctx.out, result, runtimeExpressions(workflow), `registered, ${ctx.url}`);
    return EXIT.ok;
  },
};

/** A registered definition as the engine reads it (any host name: the API resolved them). */
export async function storedWorkflow(definition: unknown): Promise<Workflow> {
  const { validateDefinition } = await import('../flows/index.ts');
  return validateDefinition(definition, { hosts: { resolve: (n) => [n] } });
}

/** True when `target` names a file or a folder rather than a registered workflow. */
export function isPath(target: string): boolean {
  return /\.(ya?ml|json)$/i.test(target) || target.includes('/') || existsSync(target);
}

function inputsError(err: unknown): unknown {
  const e = err as { issues?: Array<{ path: string; message: string }>; message?: string; name?: string };
  if (e.name !== 'ValidationError') return err;
  return new CliError(
    `${e.message}: ${(e.issues ?? []).map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    EXIT.usage,
    {
      code: 'invalid_input',
      issues: e.issues,
    },
  );
}
