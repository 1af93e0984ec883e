/**
 * Removes finished runs whole: our keys and index entries (the store's delete-run.lua) and the
 * run's BullMQ jobs. Used by `DELETE /v1/runs/:id` and by the retention pass.
 */
import { Job, type Queue } from 'bullmq';
import { ConflictError, NotFoundError } from '../errors.ts';
import { gateJobId, primaryParents, type RunMeta, stepJobId } from '../flows/index.ts';
import type { ExpiredRun, RunDocument, RunRetention, RunStore } from '../store/index.ts';

/** The queues a run's jobs live in. */
export interface RunQueues {
  runs: Queue;
  gates: Queue;
  step: (executor: string) => Queue;
}

/** Options of the removal. */
export interface RunRemovalOptions {
  /**
   * How long `remove` waits for the root job's worker to let go of it: the run's finaliser
   * records the final status just before its job completes. @defaultValue 5000
   */
  rootWaitMs?: number;
}

/** Deletes finished runs at once, or in batches for the retention pass. */
export class RunRemoval {
  private readonly rootWaitMs: number;

  constructor(
    private readonly store: RunStore,
    private readonly retention: RunRetention,
    private readonly queues: RunQueues,
    options: RunRemovalOptions = {},
  ) {
    this.rootWaitMs = options.rootWaitMs ?? 5000;
  }

  /**
   * `DELETE /v1/runs/:id`: every key of a finished run, its index entries and its BullMQ jobs.
   * A run that has not finished is a `ConflictError`, an unknown one a `NotFoundError`.
   */
  async remove(runId: string): Promise<void> {
    const run = await this.store.getRun(runId);
    if (!run) {
      const root = await Job.fromId<RunMeta>(this.queues.runs, runId);
      // Added but not announced yet (the API is writing its record): it is about to run.
      if (root && root.finishedOn === undefined) throw unfinished(runId, 'queued');
      throw new NotFoundError(`no run "${runId}"`);
    }
    if (run.finishedAt === null) throw unfinished(runId, run.status);
    // Jobs first: a record deleted while its root job lingers would read as a run being written.
    await this.removeRoot(runId);
    const meta = (await this.store.snapshot(runId, [], true)).meta;
    if (meta) await this.removeStepJobs(meta, run);
    const [outcome] = await this.retention.delete([{ runId }]);
    if (outcome === 'missing') throw new NotFoundError(`no run "${runId}"`);
  }

  /**
   * Removes the given expired runs: their keys and index entries, then their job trees (the
   * root job with its children, recursively, as BullMQ removes a flow). Children that BullMQ
   * already dropped by age are skipped by BullMQ itself.
   */
  async expire(runs: ExpiredRun[]): Promise<void> {
    await this.retention.delete(runs);
    await Promise.all(runs.map(({ runId }) => this.queues.runs.remove(runId, { removeChildren: true })));
  }

  /** Removes the root job and its tree, waiting briefly while the finaliser still holds it. */
  private async removeRoot(runId: string): Promise<void> {
    const deadline = Date.now() + this.rootWaitMs;
    // BullMQ answers 0 while a job of the tree is locked (being completed by its worker).
    while ((await this.queues.runs.remove(runId, { removeChildren: true })) === 0) {
      if (Date.now() > deadline) {
        throw new ConflictError(`run "${runId}" is still being finalised; try again in a moment`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * Removes each step, gate and fan-out instance job by id, for trees whose root BullMQ already
   * dropped by age (removing a job that is gone is a no-op).
   */
  private async removeStepJobs(meta: RunMeta, run: RunDocument): Promise<void> {
    const workflow = meta.definition;
    const parents = primaryParents(workflow);
    const removals: Array<Promise<unknown>> = [];
    for (const id of workflow.order) {
      const queue = this.queues.step(workflow.steps[id]!.executor);
      removals.push(queue.remove(stepJobId(meta.id, id), { removeChildren: false }));
      for (const host of Object.keys(run.steps[id]?.instances ?? {})) {
        removals.push(queue.remove(`${stepJobId(meta.id, id)}@${host}`, { removeChildren: false }));
      }
      for (const need of workflow.steps[id]!.needs) {
        if (parents.get(need) !== id)
          removals.push(this.queues.gates.remove(gateJobId(meta.id, need, id), { removeChildren: false }));
      }
    }
    await Promise.all(removals);
  }
}

function unfinished(runId: string, status: string): ConflictError {
  return new ConflictError(
    `run "${runId}" is ${status}: cancel it and wait for it to end before deleting it`,
  );
}
