/**
 * A step on a group of hosts: its job adds one child job per host (BullMQ dynamic children) in
 * `strategy.maxParallel` lanes, waits for them in `waiting-children` without holding a worker
 * slot, and is processed once more to aggregate their outcomes (see instance-processor.ts).
 * A step on a single host runs its one instance in its own job instead, then aggregates at once:
 * the same records and events, half the jobs and round trips.
 */
import type { FlowJob, Job } from 'bullmq';
import { type HostCatalog, keepJobsLike, type StepJobData, stepJobId } from '../flows/index.ts';
import {
  FINAL_STEP_STATUSES,
  type InstanceView,
  type StepDetails,
  type StepSnapshot,
} from '../store/index.ts';
import { runOneHost } from './instance-processor.ts';
import { settleInstances } from './reconciler.ts';
import type { RunPlan, StepPlan } from './run-plan.ts';
import type { StepProcessorDeps } from './step-deps.ts';
import type { StepOutcome } from './step-outcome.ts';

/** What a fan-out needs of the step's processing. */
export interface FanOut {
  token: string | undefined;
  /** The worker's interrupt (shutdown, lost lock), for a single host's attempt run here. */
  signal: AbortSignal | undefined;
  plan: RunPlan;
  sp: StepPlan;
  details: StepDetails;
  /** The step started after its run's cancel (an `always()` cleanup): the cancel spares its hosts. */
  afterCancel: boolean;
  /** What the step read when it began: a single host's instance needs no reads of its own. */
  snapshot: StepSnapshot;
  /** The inventory, read while the step began (a round trip saved); read here when absent. */
  catalog?: Promise<HostCatalog | undefined>;
}

/**
 * Adds one child job per host, in `maxParallel` lanes (each lane a chain, so at most that many
 * run at once), then waits for them without holding a worker slot; runs a single host's
 * instance in this job.
 */
export async function fanOut(
  deps: StepProcessorDeps,
  job: Job<StepJobData>,
  f: FanOut,
): Promise<StepOutcome> {
  const { token, sp, details } = f;
  const { runId, stepId } = job.data;
  const attempt = details.attempts;
  // The read made while the step began, else (there was none, or it failed) one now.
  const catalog = (await f.catalog?.catch(() => undefined)) ?? (await deps.inventory?.catalog());
  const hosts = catalog?.resolve(sp.step.hosts!);
  if (!hosts?.length) {
    const error = { code: 'unknown_host', message: `no host or group "${sp.step.hosts}" in the inventory` };
    return { kind: 'failed', attempt, error, details: { ...details, error, finishedAt: now() } };
  }
  const running = deps.store.queueTransition({
    runId,
    stepId,
    status: 'running',
    details: { ...details, hosts },
    attempt,
  });
  if (hosts.length === 1) {
    // The instance's own writes follow on the same connection, so they land after this one:
    // no need to wait for its reply first (a round trip less per step).
    running.applied.catch(() => undefined);
    await running.sent;
    const outcome = await oneHost(deps, job, { ...f, details: { ...details, hosts } });
    await running.applied;
    return outcome;
  }
  await running.applied;
  const lanes = sp.step.strategy.maxParallel ?? hosts.length;
  const parent = { id: job.id!, queue: job.queueQualifiedName };
  const flows: FlowJob[] = [];
  for (let lane = 0; lane < Math.min(lanes, hosts.length); lane++) {
    // BullMQ runs children first: the lane's first host is its deepest child.
    let node: FlowJob | undefined;
    for (let i = lane; i < hosts.length; i += lanes) {
      const host = hosts[i]!;
      const data: StepJobData = { ...job.data, gates: [], host, ...(f.afterCancel && { afterCancel: true }) };
      node = {
        name: `${job.data.workflow}/${stepId}@${host}`,
        queueName: job.queueName,
        data,
        opts: {
          jobId: `${stepJobId(runId, stepId)}@${host}`,
          attempts: sp.step.retries.attempts,
          backoff: {
            type: sp.step.retries.backoff,
            delay: sp.step.retries.delayMs,
            jitter: sp.step.retries.jitter,
          },
          ignoreDependencyOnFailure: true,
          ...keepJobsLike(job.opts),
        },
        children: node ? [node] : undefined,
      };
    }
    flows.push({ ...node!, opts: { ...node!.opts, parent } });
  }
  await deps.flows.addBulk(flows);
  await job.updateData({ ...job.data, phase: 'fanned-out' });
  if (await job.moveToWaitingChildren(token ?? '')) return { kind: 'waiting-children' };
  return aggregate(deps, job, sp);
}

/**
 * The single host's instance, in this job. A retry or a hand-back of the instance is the step's
 * own (its job's backoff, its attempt count, as for a local step); any other end is aggregated.
 */
async function oneHost(deps: StepProcessorDeps, job: Job<StepJobData>, f: FanOut): Promise<StepOutcome> {
  const { sp, details } = f;
  const host = details.hosts![0]!;
  const outcome = await runOneHost(deps, job, host, f);
  switch (outcome.kind) {
    case 'retry':
    case 'handed-back': {
      const { exitCode, signal: killedBy } = outcome.details;
      const error = outcome.error;
      return {
        kind: outcome.kind,
        attempt: details.attempts,
        error,
        details: { ...details, exitCode, signal: killedBy, error },
      };
    }
    case 'succeeded':
    case 'failed':
    case 'cancelled': {
      // What was just recorded for the host: no need to read it back. Its cancel came from the
      // run (a single host has no failFast siblings).
      const error = outcome.kind === 'succeeded' ? undefined : outcome.error;
      const view = { status: outcome.kind, outputs: outcome.details.outputs, error };
      return conclude(details, [host], { [host]: view }, outcome.kind === 'cancelled');
    }
    default:
      return aggregate(deps, job, sp);
  }
}

/**
 * A hosts step that ends before its fan-out (interrupted too often, cancelled while it waited to
 * retry, a failure of its own): the instances its earlier attempts ran in the step's own job
 * (one host) and left open end with it, and its record lists their hosts again, so that the run
 * document shows them. An instance with a job of its own is left to that job (and to
 * `settleInstances` should the job fail).
 */
export async function closeHosts(
  deps: StepProcessorDeps,
  job: Job<StepJobData>,
  outcome: StepOutcome,
): Promise<StepOutcome> {
  if (outcome.kind !== 'failed' && outcome.kind !== 'cancelled' && outcome.kind !== 'skipped') return outcome;
  if (outcome.details.hosts || !outcome.details.attempts) return outcome; // the fan-out's, or no earlier attempt
  const { runId, stepId } = job.data;
  const instances = await deps.store.instances.all(runId, stepId);
  const hosts = Object.keys(instances).sort();
  if (hosts.length === 0) return outcome;
  const status = outcome.kind === 'failed' ? 'failed' : 'cancelled';
  const error = outcome.kind === 'skipped' ? { code: 'skipped', message: outcome.reason } : outcome.error;
  const queue = job.queueName;
  for (const host of hosts) {
    const instance = instances[host]!;
    if (FINAL_STEP_STATUSES.has(instance.status)) continue;
    if (await deps.lookupJob(queue, `${stepJobId(runId, stepId)}@${host}`)) continue;
    await deps.store.instances.transition(
      runId,
      stepId,
      host,
      { ...instance, status, error, finishedAt: now() },
      { type: 'step.progress', step: stepId, host, status, error },
    );
  }
  return { ...outcome, details: { ...outcome.details, hosts } };
}

/** Every instance has finished: the step succeeds when all of them did. */
export async function aggregate(
  deps: StepProcessorDeps,
  job: Job<StepJobData>,
  sp: StepPlan,
): Promise<StepOutcome> {
  const { runId, stepId } = job.data;
  const snapshot = await deps.store.snapshot(runId, [stepId], false);
  const status = snapshot.status[stepId];
  if (status && FINAL_STEP_STATUSES.has(status)) {
    return { kind: 'concluded', status, error: snapshot.details[stepId]?.error };
  }
  const recorded: StepDetails = snapshot.details[stepId] ?? { executor: sp.step.executor, attempts: 0 };
  const hosts = recorded.hosts ?? [];
  // Instances whose jobs BullMQ failed without us (their worker kept dying) get their reason first.
  await settleInstances(deps, runId, stepId, hosts);
  const instances = await deps.store.instances.get(runId, stepId, hosts);
  return conclude(recorded, hosts, instances, snapshot.cancelRequested);
}

/** The step's end from its final instances: succeeded when all of them did. */
function conclude(
  recorded: StepDetails,
  hosts: string[],
  instances: Record<string, Pick<InstanceView, 'status' | 'outputs' | 'error'> | undefined>,
  cancelRequested: boolean,
): StepOutcome {
  const attempt = recorded.attempts;
  const failed = hosts.filter((h) => instances[h]?.status !== 'succeeded');
  const details: StepDetails = { ...recorded, finishedAt: now() };
  if (failed.length === 0) {
    // Step-level outputs: the instances' outputs merged in host order (later hosts win).
    const outputs = Object.assign({}, ...hosts.map((h) => instances[h]?.outputs ?? {}));
    return { kind: 'succeeded', attempt, events: [], details: { ...details, outputs } };
  }
  if (cancelRequested && failed.every((h) => instances[h]?.status === 'cancelled')) {
    const error = { code: 'cancelled', message: 'step cancelled' };
    return { kind: 'cancelled', attempt, error, details: { ...details, error } };
  }
  const summary = failed.map(
    (h) => `${h} (${instances[h]?.error?.message ?? instances[h]?.status ?? 'no result'})`,
  );
  const error = {
    code: 'hosts_failed',
    message: `${failed.length} of ${hosts.length} hosts failed: ${summary.join('; ')}`,
  };
  return { kind: 'failed', attempt, error, details: { ...details, error } };
}

function now(): string {
  return new Date().toISOString();
}
