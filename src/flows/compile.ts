/**
 * A validated workflow → one BullMQ flow (a tree), added to Redis in one MULTI.
 *
 * BullMQ jobs have one parent, but `needs` form a DAG. Every step is a job whose BullMQ parent is
 * its *primary dependent* (the first of its dependents in topological order); sinks are children
 * of the run's root job. Every other `needs` edge S → D becomes a *gate*: a tiny job, child of D,
 * parked in the delayed set until S finishes. S's processor promotes its gates before S
 * completes, a gate worker completes them at once, and BullMQ's own fan-in wakes D when its last
 * child (primary child or gate) is done. See docs/architecture.md for the picture and why.
 */
import type { FlowJob, JobsOptions } from 'bullmq';
import { stepQueueName } from './routing.ts';
import type { ExecutorName, Step, Workflow } from './workflow.ts';

/**
 * Queue names under the prefix. Step queues are per executor and `runsOn` tag set (routing.ts),
 * so each worker consumes only what it can run.
 */
export const QUEUES = {
  run: 'runs',
  gate: 'gates',
  /** BullMQ job schedulers of `on.schedule`: one delayed job per tick. */
  schedule: 'schedules',
  step: stepQueueName,
} as const;

/** Every executor a step can name: the `ExecutorName` union as a list. */
export const EXECUTOR_NAMES: readonly ExecutorName[] = ['local', 'ssh', 'vm'];

/**
 * Every Conveyor queue, in display order: what bull-board shows and `/metrics` reports. A new
 * queue (triggers' schedules, …) is added here and appears in both.
 */
export function queueNames(): string[] {
  return [
    QUEUES.run,
    ...EXECUTOR_NAMES.map((executor) => QUEUES.step(executor)),
    QUEUES.gate,
    QUEUES.schedule,
  ];
}

/** How long a gate stays parked if nothing promotes it: a year; the gate worker re-parks early ones. */
export const GATE_PARK_MS = 365 * 24 * 3600_000;

/** Data of a step job: small on purpose, the workflow lives in the run record. */
export interface StepJobData {
  runId: string;
  workflow: string;
  stepId: string;
  /** Gate job ids to promote when this step finishes. */
  gates: string[];
  /** Set on the child jobs of a fan-out step: the host this instance runs on. */
  host?: string;
  /** Set on a fan-out step's job once its instances were added. */
  phase?: 'fanned-out';
  /**
   * Set on the child jobs of a fan-out step that started after its run's cancel (an `always()`
   * cleanup): the cancel does not stop them, as it does not stop the step.
   */
  afterCancel?: true;
}

/** Data of a gate job. */
export interface GateJobData {
  runId: string;
  /** The step this gate waits for. */
  stepId: string;
  dependent: string;
}

/** The immutable part of a run, stored with its root job and in the run record. */
export interface RunMeta {
  id: string;
  workflow: { name: string; version: number | null };
  definition: Workflow;
  inputs: Record<string, unknown>;
  trigger: Record<string, unknown>;
  createdAt: string;
  /**
   * Seconds the finished run is kept (`CONVEYOR_RETENTION_DAYS` when it was created): the TTL of
   * its keys and the age of its BullMQ jobs. Absent: kept until deleted.
   */
  retentionSeconds?: number;
  /** The `idempotencyKey` the run was started with, so deleting the run frees the key. */
  idempotencyKey?: string;
  /** The run's concurrency group, evaluated when the run was created. */
  concurrency?: { group: string; cancelInProgress: boolean };
}

/**
 * `removeOnComplete` and `removeOnFail` by age, for every job of a run: BullMQ drops a finished
 * job that long after it finished (lazily, when a later job of its queue finishes). A finished
 * child's result already lives in its parent (`:processed`, `:failed`), so removing it never
 * wakes or breaks a parent still waiting.
 */
export function keepJobsFor(retentionSeconds: number | undefined): JobsOptions {
  if (retentionSeconds === undefined) return {};
  return { removeOnComplete: { age: retentionSeconds }, removeOnFail: { age: retentionSeconds } };
}

/** The keep options of an existing job, for the jobs it adds (fan-out instances). */
export function keepJobsLike(opts: JobsOptions): JobsOptions {
  return { removeOnComplete: opts.removeOnComplete, removeOnFail: opts.removeOnFail };
}

/** Job id of a step of a run. */
export function stepJobId(runId: string, stepId: string): string {
  return `${runId}.${stepId}`;
}

/** Job id of the gate that holds `dependent` until `stepId` finishes. */
export function gateJobId(runId: string, stepId: string, dependent: string): string {
  return `${runId}.gate.${stepId}.${dependent}`;
}

/** For each step, the dependent whose BullMQ child it is (`undefined`: a sink, child of the root). */
export function primaryParents(workflow: Workflow): Map<string, string | undefined> {
  const position = new Map(workflow.order.map((id, i) => [id, i]));
  const parent = new Map<string, string | undefined>(workflow.order.map((id) => [id, undefined]));
  for (const id of workflow.order) {
    for (const need of workflow.steps[id]!.needs) {
      const current = parent.get(need);
      if (current === undefined || position.get(id)! < position.get(current)!) parent.set(need, id);
    }
  }
  return parent;
}

/** Builds the run's flow: root job (the run's finaliser) → sinks → … → roots, plus gates. */
export function compileRun(meta: RunMeta): FlowJob {
  const workflow = meta.definition;
  const runId = meta.id;
  const parents = primaryParents(workflow);
  const keep = keepJobsFor(meta.retentionSeconds);
  const primaryChildren = new Map<string, string[]>();
  const gatesOf = new Map<string, string[]>();
  for (const id of workflow.order) {
    const parent = parents.get(id);
    if (parent !== undefined) primaryChildren.set(parent, [...(primaryChildren.get(parent) ?? []), id]);
  }
  for (const id of workflow.order) {
    for (const need of workflow.steps[id]!.needs) {
      if (parents.get(need) !== id)
        gatesOf.set(need, [...(gatesOf.get(need) ?? []), gateJobId(runId, need, id)]);
    }
  }

  // Built bottom-up (dependencies first) so deep chains need no recursion.
  const nodes = new Map<string, FlowJob>();
  for (const id of workflow.order) {
    const step = workflow.steps[id]!;
    const children: FlowJob[] = (primaryChildren.get(id) ?? []).map((child) => nodes.get(child)!);
    for (const need of step.needs) {
      if (parents.get(need) === id) continue;
      const data: GateJobData = { runId, stepId: need, dependent: id };
      children.push({
        name: `${workflow.name}/${need} → ${id}`,
        queueName: QUEUES.gate,
        data,
        opts: {
          jobId: gateJobId(runId, need, id),
          delay: GATE_PARK_MS,
          ignoreDependencyOnFailure: true,
          ...keep,
        },
      });
    }
    const data: StepJobData = { runId, workflow: workflow.name, stepId: id, gates: gatesOf.get(id) ?? [] };
    nodes.set(id, {
      name: `${workflow.name}/${id}`,
      queueName: QUEUES.step(step.executor, step.runsOn),
      data,
      opts: { ...stepJobOptions(runId, step), ...keep },
      children: children.length ? children : undefined,
    });
  }
  const sinks = workflow.order.filter((id) => parents.get(id) === undefined);
  return {
    name: workflow.name,
    queueName: QUEUES.run,
    data: meta,
    opts: { jobId: runId, ...keep },
    children: sinks.map((id) => nodes.get(id)!),
  };
}

function stepJobOptions(runId: string, step: Step): JobsOptions {
  return {
    jobId: stepJobId(runId, step.id),
    attempts: step.retries.attempts,
    backoff: { type: step.retries.backoff, delay: step.retries.delayMs, jitter: step.retries.jitter },
    // A failed step must still wake its dependent (so it can skip); the failure stays visible.
    ignoreDependencyOnFailure: true,
  };
}
