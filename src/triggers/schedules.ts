/**
 * `on.schedule` as BullMQ job schedulers on the `schedules` queue: one scheduler per distinct
 * (cron, timezone) of a workflow's latest version, id `<workflow>.<digest>`, so a new version
 * that keeps an entry keeps its scheduler (and its next tick) and one that changes it replaces it.
 * BullMQ keeps one delayed job per scheduler and makes the next one when a processor takes the
 * current one, so each tick is one job whatever the number of processes; the run it starts
 * carries the tick's id as its idempotency key, so a tick job run twice (a stalled processor)
 * still starts one run.
 */
import { createHash } from 'node:crypto';
import type { Job, JobSchedulerJson, Queue } from 'bullmq';
import type { Logger } from 'pino';
import { ConflictError } from '../errors.ts';
import { DEFAULT_TIMEZONE, type Workflow } from '../flows/index.ts';
import type { WorkflowStore } from '../store/index.ts';

/** One schedule of a workflow, as registered with BullMQ. */
export interface ScheduleEntry {
  /** The BullMQ job scheduler id. */
  id: string;
  cron: string;
  timezone: string;
}

/** What a tick job carries (the scheduler's template data). */
export interface TickData {
  workflow: string;
  cron: string;
  timezone: string;
}

/** What a tick needs to start a run: the API's launcher. */
export type Launch = (request: {
  workflow: Workflow;
  version: number;
  trigger: Record<string, unknown>;
  idempotencyKey: string;
  idempotencyTtlS: number;
}) => Promise<{ run: { id: string }; created: boolean }>;

/**
 * Tick jobs: retried on an error (Redis briefly away), safe since the run's idempotency key is
 * the tick's; the last 1,000 kept for dashboards (a 1 s cron makes 86,400 a day).
 */
const TICK_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { count: 1000 },
  removeOnFail: { count: 1000 },
};

/**
 * How long a tick's idempotency key lives: a day, not the API's 7, so a 1 s cron keeps 86,400
 * keys rather than 604,800. A tick job is taken again only after a stall (seconds) or when its
 * processor died and none came back before this.
 */
const TICK_KEY_TTL_S = 24 * 3600;

/** The schedules of a workflow (or of its summary), one per distinct cron and zone. */
export function scheduleEntries(workflow: Pick<Workflow, 'name' | 'on'>): ScheduleEntry[] {
  const out = new Map<string, ScheduleEntry>();
  for (const { cron, timezone = DEFAULT_TIMEZONE } of workflow.on?.schedule ?? []) {
    const digest = createHash('sha256').update(`${cron}\n${timezone}`).digest('hex').slice(0, 16);
    // Workflow names have no '.', so `<name>.` prefixes only that workflow's schedulers.
    const id = `${workflow.name}.${digest}`;
    out.set(id, { id, cron, timezone });
  }
  return [...out.values()];
}

/** A BullMQ job scheduler of a schedule tick. */
type Scheduler = JobSchedulerJson<TickData>;

/** The schedulers of every workflow, kept equal to their latest versions' `on.schedule`. */
export class Schedules {
  constructor(
    private readonly queue: Queue<TickData>,
    private readonly workflows: WorkflowStore,
  ) {}

  /** Makes `name`'s schedulers match its latest version (none when it was deleted). */
  async sync(name: string): Promise<void> {
    const [latest, schedulers] = await Promise.all([this.workflows.latestSummary(name), this.schedulers()]);
    await this.reconcile(name, latest ? scheduleEntries(latest) : [], schedulers);
  }

  /**
   * Syncs every registered workflow and drops schedulers of workflows that are gone: run at API
   * start, it repairs a process that died between storing a workflow and syncing its schedulers.
   * One read of the summaries and one of the schedulers, whatever the number of workflows.
   */
  async syncAll(): Promise<void> {
    const [summaries, schedulers] = await Promise.all([this.workflows.latestSummaries(), this.schedulers()]);
    const wanted = new Map(summaries.map((latest) => [latest.name, scheduleEntries(latest)]));
    for (const scheduler of schedulers) {
      const name = scheduler.key.split('.')[0]!;
      if (!wanted.has(name)) wanted.set(name, []);
    }
    for (const [name, entries] of wanted) await this.reconcile(name, entries, schedulers);
  }

  /** Removes `name`'s schedulers that are not `wanted` and adds the missing ones. */
  private async reconcile(name: string, wanted: ScheduleEntry[], schedulers: Scheduler[]): Promise<void> {
    const existing = schedulers.filter((s) => s.key.startsWith(`${name}.`));
    for (const scheduler of existing) {
      if (!wanted.some((w) => w.id === scheduler.key)) await this.queue.removeJobScheduler(scheduler.key);
    }
    for (const entry of wanted) {
      if (existing.some((s) => s.key === entry.id)) continue;
      const data: TickData = { workflow: name, cron: entry.cron, timezone: entry.timezone };
      await this.queue.upsertJobScheduler(
        entry.id,
        { pattern: entry.cron, tz: entry.timezone },
        { name, data, opts: TICK_JOB_OPTIONS },
      );
    }
  }

  /** When each scheduler ticks next (ms), by scheduler id. */
  async nextTicks(): Promise<Map<string, number | undefined>> {
    return new Map((await this.schedulers()).map((s) => [s.key, s.next]));
  }

  private schedulers(): Promise<Scheduler[]> {
    return this.queue.getJobSchedulers(0, -1, true);
  }
}

/** The scheduled time of a tick job, from its id (`repeat:<scheduler>:<ms>`, BullMQ's format). */
export function scheduledAtOf(job: Job): number {
  const fromId = Number(job.id?.slice(job.id.lastIndexOf(':') + 1));
  return Number.isFinite(fromId) && fromId > 0 ? fromId : job.timestamp + (job.opts.delay ?? 0);
}

/** The processor of the `schedules` queue: one run per tick of a workflow's latest version. */
export function createTickProcessor(deps: {
  workflows: WorkflowStore;
  queue: Queue<TickData>;
  launch: Launch;
  logger: Logger;
}) {
  return async (job: Job<TickData>): Promise<{ runId?: string; skipped?: string }> => {
    const schedulerId = job.repeatJobKey ?? '';
    const scheduledAt = scheduledAtOf(job);
    // One read: a tick that is still wanted (the usual case) launches the version it reads.
    const found = await deps.workflows.get(job.data.workflow);
    const entry = found && scheduleEntries(found.workflow).find((e) => e.id === schedulerId);
    if (!found || !entry) {
      // The workflow was deleted or its schedule changed after this tick was due.
      if (schedulerId) await deps.queue.removeJobScheduler(schedulerId);
      return { skipped: 'the workflow no longer has this schedule' };
    }
    try {
      const { run } = await deps.launch({
        workflow: found.workflow,
        version: found.version,
        trigger: {
          type: 'schedule',
          cron: entry.cron,
          timezone: entry.timezone,
          scheduledAt: new Date(scheduledAt).toISOString(),
        },
        idempotencyKey: `schedule:${schedulerId}:${scheduledAt}`,
        idempotencyTtlS: TICK_KEY_TTL_S,
      });
      return { runId: run.id };
    } catch (err) {
      // A repeated tick after a new version was registered: the tick already has its run.
      if (err instanceof ConflictError) return { skipped: err.message };
      deps.logger.error({ err, workflow: job.data.workflow, scheduledAt }, 'a scheduled run could not start');
      throw err;
    }
  };
}
