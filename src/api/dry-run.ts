/**
 * Dry runs: `?dryRun=true` on every route that starts a run. The inputs are checked exactly as a
 * real run checks them (same function, same error), and the answer is the plan; nothing is
 * written to Redis.
 */
import {
  type Capabilities,
  classifyQueues,
  type HostCatalog,
  primaryParents,
  QUEUES,
  resolveInputs,
  type Workflow,
} from '../flows/index.ts';
import { checkParam, dryRunParam } from './request-schemas.ts';

/**
 * The `dryRun` query parameter: absent → false; exactly `true` or `false` once; anything else
 * (`1`, `yes`, empty, repeated) is a 400, so a typo can never start a real run.
 */
export function dryRunFlag(values: string[] | undefined): boolean {
  if (values === undefined) return false;
  // Given twice is refused like a bad value: which one would count is a guess.
  return checkParam(dryRunParam, 'dryRun', values.length === 1 ? values[0]! : '') === 'true';
}

/**
 * What a run would be: its resolved inputs and each step's stage, executor, tags, queue, hosts
 * and BullMQ parent, and `waiting` where none of the live `workers` would take it.
 */
export function runPlan(
  workflow: Workflow,
  version: number | null,
  givenInputs: unknown,
  hosts: HostCatalog,
  workers: readonly Capabilities[],
) {
  const inputs = resolveInputs(workflow, givenInputs);
  const level = new Map<string, number>();
  for (const id of workflow.order) {
    level.set(id, Math.max(0, ...workflow.steps[id]!.needs.map((n) => level.get(n)! + 1)));
  }
  const parents = primaryParents(workflow);
  const queueOf = (id: string) => QUEUES.step(workflow.steps[id]!.executor, workflow.steps[id]!.runsOn);
  const { unserved } = classifyQueues(workflow.order.map(queueOf), workers);
  return {
    dryRun: true as const,
    workflow: workflow.name,
    version,
    inputs,
    steps: workflow.order.map((id) => {
      const step = workflow.steps[id]!;
      return {
        id,
        needs: step.needs,
        /** Steps with the same stage can run at the same time. */
        stage: level.get(id),
        executor: step.executor,
        runsOn: step.runsOn,
        queue: queueOf(id),
        waiting: unserved[queueOf(id)],
        if: step.if,
        hosts: step.hosts ? (hosts.resolve(step.hosts) ?? []) : undefined,
        maxParallel: step.hosts ? step.strategy.maxParallel : undefined,
        timeoutMs: step.timeoutMs,
        attempts: step.retries.attempts,
        bullmqParent: parents.get(id) ?? '(run)',
      };
    }),
  };
}
