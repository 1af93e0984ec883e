/**
 * The periodic reconciliation: finds runs whose record and queue disagree (a write lost in a
 * Redis restart with AOF `everysec`, or a failover) and repairs them, every `intervalMs`, in one
 * process of many (whoever claims the lease). Only runs older than `graceMs` are looked at, and a
 * job is judged only when it ended more than `graceMs` ago, so writes still in flight land first.
 *
 * - A root job waiting without a run record: the record is written again from the job.
 * - A run not final whose root job completed: its final write was lost; written now from the
 *   root job's result.
 * - A run not final whose root job failed or is missing, or with a step whose job is missing:
 *   BullMQ can no longer finish it, so its open steps are settled, the run is marked cancelled
 *   (its leftover jobs skip) and failed with the reason.
 * - A step `queued` or `running` whose job ended: recorded failed with the reason
 *   (reconciler.ts `settleNeeds`), its gates promoted and dependents made ready. A `running` step
 *   whose job is back in `wait` needs nothing: the next attempt counts the interruption.
 * - A final step's gates are promoted again (a lost promote would leave a dependent asleep).
 *
 * A full look at a run costs a few round trips per step (its jobs, its gates): thousands for a
 * large run, every pass, while the run is busy and competing with it for the same Redis and
 * event loop. A run whose event stream grew since the previous pass is making progress, so it
 * is looked at fully only every `BUSY_PASSES` passes while it keeps growing, and at once when it
 * goes quiet (what the repair is for: a lost write leaves a run with nothing left to do).
 */
import { Job, type Queue } from 'bullmq';
import { gateJobId, QUEUES, stepJobId } from '../flows/index.ts';
import { FINAL_STEP_STATUSES, type WorkerRegistry } from '../store/index.ts';
import { promoteGates } from './gates.ts';
import { settleNeeds } from './reconciler.ts';
import { planFor, type StepProcessorDeps } from './step-deps.ts';

/** Runs looked at per pass (the oldest first). */
const RUNS_PER_PASS = 200;

/** A run whose events keep growing is looked at fully once in this many passes. */
const BUSY_PASSES = 10;

/** Options of the repair. */
export interface RecordRepairOptions {
  registry: WorkerRegistry;
  runsQueue: Queue;
  /** Finds a step queue by name (the worker's cache). */
  queue(name: string): Queue;
  holder: string;
  /** @defaultValue 15000 */
  intervalMs: number;
  /** @defaultValue 10000 */
  graceMs: number;
}

/** The periodic reconciliation of one worker. */
export class RecordRepair {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  /** Active runs seen by the last pass: their event count then, and passes skipped since. */
  private readonly seen = new Map<string, { events: number; skipped: number }>();

  constructor(
    private readonly deps: StepProcessorDeps,
    private readonly options: RecordRepairOptions,
  ) {}

  /** Starts the periodic passes. */
  start(): void {
    const { intervalMs, registry, holder } = this.options;
    this.timer = setInterval(() => {
      this.running ??= registry
        .claimLease('record-repair', holder, intervalMs)
        .then((mine) => (mine ? this.run() : undefined))
        .catch((err) => this.deps.logger.warn({ err }, 'record repair failed'))
        .finally(() => {
          this.running = undefined;
        });
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops (waits for a pass under way). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; returns the ids of the runs it repaired. */
  async run(): Promise<string[]> {
    const { store, logger } = this.deps;
    const roots = await this.options.runsQueue.getJobs(['waiting-children'], 0, RUNS_PER_PASS - 1, true);
    for (const root of roots) {
      if (root?.data?.id && !(await store.snapshot(root.data.id, [], true)).meta) {
        logger.warn({ runId: root.data.id }, 'run record missing: written again from its root job');
        await store.announce(root.data);
      }
    }
    const repaired: string[] = [];
    const active = await store.activeRuns(Date.now() - this.options.graceMs, RUNS_PER_PASS);
    const counts = await store.eventCounts(active);
    for (const id of this.seen.keys()) if (!active.includes(id)) this.seen.delete(id);
    for (const [i, runId] of active.entries()) {
      if (this.busy(runId, counts[i]!)) continue;
      if (await this.repairRun(runId).catch((err) => logger.warn({ err, runId }, 'could not repair a run')))
        repaired.push(runId);
    }
    return repaired;
  }

  /** True when the run's events grew since the last pass and it was looked at recently enough. */
  private busy(runId: string, events: number): boolean {
    const last = this.seen.get(runId);
    const grew = last !== undefined && events !== last.events;
    const skipped = grew && last.skipped + 1 < BUSY_PASSES ? last.skipped + 1 : 0;
    this.seen.set(runId, { events, skipped });
    return skipped > 0;
  }

  /** Repairs one run; true when it changed something. */
  private async repairRun(runId: string): Promise<boolean> {
    const { store, logger } = this.deps;
    const run = await store.getRun(runId);
    if (!run) return false;
    const open = Object.keys(run.steps).filter((id) => !FINAL_STEP_STATUSES.has(run.steps[id]!.status));
    const root = await Job.fromId(this.options.runsQueue, runId);
    const rootState = root ? await root.getState() : 'missing';
    if (rootState === 'completed') {
      const status = (root!.returnvalue as { status?: string } | undefined)?.status;
      await settleNeeds(this.deps, runId, open, true);
      const final = status === 'succeeded' || status === 'cancelled' ? status : 'failed';
      if (await store.finish(runId, final, { reconciled: true })) {
        logger.warn({ runId, status: final }, "run's final status was lost: written again from its root job");
        await store.announceRunEnded(runId);
      }
      return true;
    }
    if (rootState === 'failed' || rootState === 'missing')
      return this.fail(
        runId,
        open,
        rootState === 'missing'
          ? 'its root job is missing from the queue (lost in a Redis restart or failover)'
          : `its finaliser failed: ${root!.failedReason}`,
      );

    const plan = await planFor(this.deps, runId);
    const ended: string[] = [];
    const graceEnd = Date.now() - this.options.graceMs;
    for (const [id, view] of Object.entries(run.steps)) {
      const sp = plan.steps.get(id);
      if (!sp) continue;
      if (FINAL_STEP_STATUSES.has(view.status)) {
        // Only gates whose dependent still waits: the rest did their work.
        const waiting = sp.dependents.filter((d) => run.steps[d.id]?.status === 'pending');
        const gates = new Set(waiting.map((d) => gateJobId(runId, id, d.id)));
        await promoteGates(
          this.deps.gateQueue,
          sp.gates.filter((g) => gates.has(g)),
        );
        continue;
      }
      // A pending step's job waits for its children; only queued and running ones can disagree.
      if (view.status === 'pending') continue;
      const queue = this.options.queue(QUEUES.step(sp.step.executor, sp.step.runsOn));
      const job = await Job.fromId(queue, stepJobId(runId, id));
      if (!job)
        return this.fail(
          runId,
          open,
          `step ${id}'s job is missing from the queue (lost in a Redis restart or failover)`,
        );
      const state = await job.getState();
      if ((state === 'completed' || state === 'failed') && (job.finishedOn ?? 0) < graceEnd) ended.push(id);
    }
    const settled = await settleNeeds(this.deps, runId, ended, true);
    if (settled.length)
      logger.warn({ runId, steps: settled }, 'steps whose jobs ended without a status: recorded failed');
    return settled.length > 0;
  }

  /** BullMQ can no longer finish the run: settle what ended, skip the rest, fail it with `reason`. */
  private async fail(runId: string, open: string[], reason: string): Promise<boolean> {
    const { store, logger } = this.deps;
    await settleNeeds(this.deps, runId, open, true);
    await store.requestCancel(runId);
    const error = { code: 'lost', message: `the run cannot continue: ${reason}` };
    if (await store.finish(runId, 'failed', { error, reconciled: true })) {
      logger.warn({ runId, error }, 'run failed by the record repair');
      await store.announceRunEnded(runId);
    }
    return true;
  }
}
