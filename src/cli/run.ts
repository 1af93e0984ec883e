/**
 * `conveyor run <file|name>`: starts a run of a registered workflow, or of a file as an ad-hoc
 * run (checked locally first), then watches it (the default on a terminal) or prints its id.
 */
import type { Run } from '../client/index.ts';
import type { Command } from './command.ts';
import { stringFlag } from './command.ts';
import { EXIT, usageError } from './errors.ts';
import { parseInputs } from './inputs.ts';
import { checkedFile, INPUT_FLAG, isPath, printPlan, runtimeExpressions, storedWorkflow } from './plan.ts';
import { INVENTORY_FLAG } from './validate.ts';
import { watchRun } from './watch.ts';

/** Flags of the commands that may watch a run. */
export const WATCH_FLAGS = {
  'cancel-on-interrupt': { type: 'boolean', help: 'Ctrl-C cancels the run instead of detaching' },
} as const;

/** The command. */
export const run: Command = {
  name: 'run',
  summary: 'start a run of a file or a registered workflow, and watch it',
  usage: 'run <file|name> [-i key=value…] [--watch|--detach] [--dry-run]',
  description:
    "Watching is the default on a terminal: the exit status is then the run's (0 succeeded, 1 failed\nor cancelled). Ctrl-C detaches and prints how to re-attach.",
  args: [1, 1],
  flags: {
    ...INPUT_FLAG,
    watch: { type: 'boolean', short: 'w', help: 'follow the run to its end (default on a terminal)' },
    detach: { type: 'boolean', short: 'd', help: 'print the run id and return at once' },
    'dry-run': { type: 'boolean', help: 'show the plan, start nothing' },
    'idempotency-key': {
      type: 'string',
      value: 'key',
      help: 'the same key within 7 days returns the same run',
    },
    ...WATCH_FLAGS,
    ...INVENTORY_FLAG,
  },
  async run(ctx) {
    const { out, values } = ctx;
    if (values.watch && values.detach) throw usageError('--watch and --detach exclude each other');
    const target = ctx.positionals[0]!;
    const pairs = (values.input as string[] | undefined) ?? [];
    const idempotencyKey = stringFlag(values, 'idempotency-key');
    const client = ctx.client();
    let started: Run;
    if (isPath(target)) {
      const { value, workflow } = await checkedFile(ctx, target);
      const body = { workflow: value as never, inputs: parseInputs(pairs, workflow.inputs), idempotencyKey };
      if (values['dry-run']) {
        const plan = await client.runs.plan(body);
        printPlan(out, plan, runtimeExpressions(workflow), `file ${target}, planned by ${ctx.url}`);
        return EXIT.ok;
      }
      started = await client.runs.create(body);
    } else {
      const stored = await client.workflows.get(target);
      const workflow = await storedWorkflow(stored.definition);
      const body = { inputs: parseInputs(pairs, workflow.inputs), idempotencyKey };
      if (values['dry-run']) {
        printPlan(
          out,
          await client.workflows.plan(target, body),
          runtimeExpressions(workflow),
          `registered, ${ctx.url}`,
        );
        return EXIT.ok;
      }
      started = await client.workflows.start(target, body);
    }
    const watch = values.watch || (!values.detach && out.isTTY && !out.json);
    if (!watch) {
      out.result(started, () => {
        out.line(started.id);
        out.note(`started run ${started.id}; follow it with: conveyor watch ${started.id}`);
      });
      return EXIT.ok;
    }
    return watchRun(out, client, started.id, { cancelOnInterrupt: !!values['cancel-on-interrupt'] });
  },
};
