/**
 * Failures BullMQ makes without calling our processor, recorded after the fact. A job can end
 * without its step's status reaching the run record: BullMQ fails a job that stalled past its
 * limit on its own, a processor can die between the queue's write and ours, a write can be lost
 * in a Redis failover. Whoever looks next reconciles: the dependent that wakes (its need's job
 * ended, its status did not land), the worker that saw the job fail, the run's finaliser. The
 * step is recorded `failed` with a reason that says what happened, its gates are promoted and
 * its dependents made ready, so they wake and skip (or run, for `always()`) and the run ends.
 */
import type { Job } from 'bullmq';
import { QUEUES, type StepJobData, stepJobId } from '../flows/index.ts';
import { FINAL_STEP_STATUSES } from '../store/index.ts';
import { promoteGates } from './gates.ts';
import { planFor, type StepProcessorDeps } from './step-deps.ts';

/** Why a job ended without a recorded status, from what BullMQ kept of it. */
function reasonOf(found: { state: string; failedReason?: string; stalls: number } | undefined) {
  if (found?.state === 'failed' && /stalled/.test(found.failedReason ?? '')) {
    return { code: 'worker_lost', message: `its worker died ${found.stalls} times while running it` };
  }
  if (found?.state === 'failed') {
    return {
      code: 'internal',
      message: `its job failed without a recorded status: ${found.failedReason ?? 'no reason'}`,
    };
  }
  return { code: 'lost', message: 'its job ended but its status never reached the run record' };
}

/**
 * Records as failed each of `stepIds` that is not final although its job has ended: at once for
 * a job BullMQ failed, and, when `force`, also for a job that completed or vanished (a status
 * write still in flight would have landed by then). Returns the steps it recorded.
 */
export async function settleNeeds(
  deps: StepProcessorDeps,
  runId: string,
  stepIds: string[],
  force: boolean,
): Promise<string[]> {
  if (stepIds.length === 0) return [];
  const plan = await planFor(deps, runId);
  const snapshot = await deps.store.snapshot(runId, stepIds, false);
  const settled: string[] = [];
  for (const id of stepIds) {
    const sp = plan.steps.get(id);
    if (!sp || FINAL_STEP_STATUSES.has(snapshot.status[id] ?? '')) continue;
    const found = await deps.lookupJob(QUEUES.step(sp.step.executor, sp.step.runsOn), stepJobId(runId, id));
    const ended = found === undefined || found.state === 'failed' || found.state === 'completed';
    if (!ended || (found?.state !== 'failed' && !force)) continue;
    const error = reasonOf(found);
    const recorded = snapshot.details[id];
    const written = await deps.store.transition({
      runId,
      stepId: id,
      status: 'failed',
      details: {
        ...recorded,
        executor: sp.step.executor,
        attempts: recorded?.attempts ?? 0,
        ...(sp.step.continueOnError && { continueOnError: true }),
        error,
        finishedAt: new Date().toISOString(),
      },
      event: { type: 'step.failed', step: id, error, reconciled: true },
      dependents: sp.dependents,
    });
    if (written) {
      deps.logger.warn(
        { runId, stepId: id, error },
        'step recorded failed after its job ended without a status',
      );
      settled.push(id);
    }
    await promoteGates(deps.gateQueue, sp.gates);
  }
  return settled;
}

/**
 * Instances of a fan-out step that are not final although their jobs ended (their worker died
 * past the limit, BullMQ failed them): recorded failed with the reason. Returns their hosts.
 */
export async function settleInstances(
  deps: StepProcessorDeps,
  runId: string,
  stepId: string,
  hosts: string[],
): Promise<string[]> {
  const instances = await deps.store.instances.get(runId, stepId, hosts);
  const queue = QUEUES.step('ssh', (await planFor(deps, runId)).steps.get(stepId)?.step.runsOn);
  const settled: string[] = [];
  for (const host of hosts) {
    if (FINAL_STEP_STATUSES.has(instances[host]?.status ?? '')) continue;
    const found = await deps.lookupJob(queue, `${stepJobId(runId, stepId)}@${host}`);
    if (found && found.state !== 'failed' && found.state !== 'completed') continue;
    const error = reasonOf(found);
    const written = await deps.store.instances.transition(
      runId,
      stepId,
      host,
      { ...instances[host], status: 'failed', error, finishedAt: new Date().toISOString() },
      { type: 'step.progress', step: stepId, host, status: 'failed', error, reconciled: true },
    );
    if (written) settled.push(host);
  }
  return settled;
}

/** The worker's `failed` listener: a step job failed for good, perhaps without our processor. */
export async function onJobFailed(deps: StepProcessorDeps, job: Job<StepJobData> | undefined): Promise<void> {
  if (!job?.data?.runId || !job.data.stepId) return;
  if ((await job.getState()) !== 'failed') return; // it will be retried: not the end
  const { runId, stepId, host } = job.data;
  if (host !== undefined) await settleInstances(deps, runId, stepId, [host]);
  else await settleNeeds(deps, runId, [stepId], false);
}
