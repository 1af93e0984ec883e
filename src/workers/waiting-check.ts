/**
 * Steps nobody can run are said so, not left to wait silently. Every `intervalMs`, one process
 * (API or worker: whoever claims the lease) compares every known step queue with the live
 * workers' heartbeats, rewrites the `unserved` hash (which run documents read for `waiting`),
 * and gives each step job waiting in an unserved queue a `step.waiting` event, once per reason.
 * The API does the same for a run's queues when it launches the run, so a new run is flagged at
 * once; this check covers workers that die or stop later.
 */
import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { classifyQueues, type StepJobData } from '../flows/index.ts';
import type { RedisClient } from '../redis-client.ts';
import { bullPrefix, type RunStore, type WorkerRegistry } from '../store/index.ts';

/** Waiting jobs looked at per unserved queue and pass (the oldest first). */
const JOBS_PER_PASS = 200;

/** Options of the check. */
export interface WaitingCheckOptions {
  redis: RedisClient;
  /** `CONVEYOR_PREFIX`. */
  prefix: string;
  store: RunStore;
  registry: WorkerRegistry;
  /** Who holds the lease (a worker or API id). */
  holder: string;
  /** @defaultValue 2000 */
  intervalMs?: number;
  logger: Logger;
}

/** The periodic check. */
export class WaitingCheck {
  private readonly queues = new Map<string, Queue>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly options: WaitingCheckOptions) {}

  /** Starts checking every interval. */
  start(): void {
    const ms = this.options.intervalMs ?? 2000;
    this.timer = setInterval(() => {
      this.running ??= this.tick(ms)
        .catch((err) => {
          // While Redis is away its connection's own errors say so already.
          const level = this.options.redis.status === 'ready' ? 'warn' : 'debug';
          this.options.logger[level]({ err }, 'waiting check failed');
        })
        .finally(() => {
          this.running = undefined;
        });
    }, ms);
    this.timer.unref();
  }

  /** One pass, if this process holds the lease. */
  private async tick(ms: number): Promise<void> {
    if (!(await this.options.registry.claimLease('waiting-check', this.options.holder, ms))) return;
    await this.run();
  }

  /** One pass, unconditionally. */
  async run(): Promise<void> {
    const { registry, store } = this.options;
    const [workers, names] = await Promise.all([registry.list(), registry.queues()]);
    const { unserved } = classifyQueues(names, workers);
    await registry.markUnserved(unserved, [], true);
    for (const [name, reason] of Object.entries(unserved)) {
      const jobs = await this.queue(name).getJobs(['wait', 'prioritized'], 0, JOBS_PER_PASS - 1, true);
      for (const job of jobs) {
        const data = job?.data as StepJobData | undefined;
        if (data?.runId && data.stepId) await store.flagWaiting(data.runId, data.stepId, reason);
      }
    }
  }

  /** Stops checking. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.options.redis, prefix: bullPrefix(this.options.prefix) });
      this.queues.set(name, queue);
    }
    return queue;
  }
}
