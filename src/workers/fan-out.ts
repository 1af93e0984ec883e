/**
 * A step on a group of hosts: its job adds one child job per host (BullMQ dynamic children) in
 * `strategy.maxParallel` lanes, waits for them in `waiting-children` without holding a worker
 * slot, and is processed once more to aggregate their outcomes (see instance-processor.ts).
 */
import type { FlowJob, Job } from 'bullmq';
import { keepJobsLike, type StepJobData, stepJobId } from '../flows/index.ts';
import { FINAL_STEP_STATUSES, type StepDetails } from '../store/index.ts';
import { settleInstances } from './reconciler.ts';
import type { StepPlan } from './run-plan.ts';
import type { StepProcessorDeps } from './step-deps.ts';
import type { StepOutcome } from './step-outcome.ts';

/**
 * Adds one child job per host, in `maxParallel` lanes (each lane a chain, so at most that many
 * run at once), then waits for them without holding a worker slot.
 */
export async function fanOut(
  deps: StepProcessorDeps,
  job: Job<StepJobData>,
  token: string | undefined,
  sp: StepPlan,
  details: StepDetails,
): Promise<StepOutcome> {
  const { runId, stepId } = job.data;
  const attempt = details.attempts;
  const hosts = (await deps.inventory?.catalog())?.resolve(sp.step.hosts!);
  if (!hosts?.length) {
    const error = { code: 'unknown_host', message: `no host or group "${sp.step.hosts}" in the inventory` };
    return { kind: 'failed', attempt, error, details: { ...details, error, finishedAt: now() } };
  }
  await deps.store.transition(runId, stepId, 'running', { ...details, hosts }, undefined, [], attempt);
  const lanes = sp.step.strategy.maxParallel ?? hosts.length;
  const parent = { id: job.id!, queue: job.queueQualifiedName };
  const flows: FlowJob[] = [];
  for (let lane = 0; lane < Math.min(lanes, hosts.length); lane++) {
    // BullMQ runs children first: the lane's first host is its deepest child.
    let node: FlowJob | undefined;
    for (let i = lane; i < hosts.length; i += lanes) {
      const host = hosts[i]!;
      const data: StepJobData = { ...job.data, gates: [], host };
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
  const attempt = recorded.attempts;
  const hosts = recorded.hosts ?? [];
  // Instances whose jobs BullMQ failed without us (their worker kept dying) get their reason first.
  await settleInstances(deps, runId, stepId, hosts);
  const instances = await deps.store.instances(runId, stepId, hosts);
  const failed = hosts.filter((h) => instances[h]?.status !== 'succeeded');
  const details: StepDetails = { ...recorded, finishedAt: now() };
  if (failed.length === 0) {
    // Step-level outputs: the instances' outputs merged in host order (later hosts win).
    const outputs = Object.assign({}, ...hosts.map((h) => instances[h]?.outputs ?? {}));
    return { kind: 'succeeded', attempt, events: [], details: { ...details, outputs } };
  }
  if (snapshot.cancelRequested && failed.every((h) => instances[h]?.status === 'cancelled')) {
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
