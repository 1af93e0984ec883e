/**
 * Starts runs: inputs checked, the flow compiled and added in one MULTI (the run exists whole or
 * not at all), then the run record announced. Used by every way a run starts (HTTP today;
 * webhooks, schedules and events later).
 */
import { randomBytes } from 'node:crypto';
import { type FlowProducer, Job, type Queue } from 'bullmq';
import type { Redis, RedisOptions } from 'ioredis';
import { ConflictError, NotFoundError } from '../errors.ts';
import { type RunMeta, resolveInputs, stepJobId, type Workflow } from '../flows/index.ts';
import { type RunDocument, RunStore } from '../store/index.ts';
import { SubmissionThread } from './submissions.ts';

/** A new run id: time-ordered, URL-safe, never all digits and without ':' (BullMQ job id rules). */
export function newRunId(): string {
  return `run_${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
}

/** TLS options as they can cross to a thread: functions (custom checks) cannot, and are dropped. */
function cloneable(tls: RedisOptions['tls']): RedisOptions['tls'] {
  if (!tls) return undefined;
  return Object.fromEntries(Object.entries(tls).filter(([, v]) => typeof v !== 'function'));
}

/** What starts a run. */
export interface LaunchRequest {
  workflow: Workflow;
  version: number | null;
  inputs?: unknown;
  trigger: Record<string, unknown>;
  /** Same key (within the workflow) → same run. */
  idempotencyKey?: string;
}

/** Starts and cancels runs. */
export class RunLauncher {
  /** Parses, validates, compiles and adds off the event loop (see submissions.ts). */
  readonly submissions: SubmissionThread;

  constructor(
    private readonly redis: Redis,
    private readonly store: RunStore,
    flows: FlowProducer,
    private readonly queues: { runs: Queue; step: (executor: string) => Queue },
  ) {
    // The thread adds flows on a connection of its own, to the producer's Redis and prefix.
    const { host, port, path, username, password, db, tls } = (flows.opts.connection as Redis).options;
    const redisOptions: RedisOptions = { host, port, path, username, password, db, tls: cloneable(tls) };
    this.submissions = new SubmissionThread({ redis: redisOptions, bullPrefix: flows.opts.prefix ?? 'bull' });
  }

  /** Stops the submission thread. */
  async close(): Promise<void> {
    await this.submissions.close();
  }

  /** Starts a run, or returns the existing one for a repeated idempotency key. */
  async launch(request: LaunchRequest): Promise<{ run: RunDocument; created: boolean }> {
    const inputs = resolveInputs(request.workflow, request.inputs);
    let runId = newRunId();
    if (request.idempotencyKey !== undefined) {
      const key = this.store.keys.idempotency(request.workflow.name, request.idempotencyKey);
      const claimed = await this.redis.set(key, runId, 'EX', 7 * 24 * 3600, 'NX');
      if (claimed !== 'OK') {
        const existing = (await this.redis.get(key))!;
        const run = await this.getRun(existing);
        if (run) return { run, created: false };
        // The key was claimed but its run never got written (a crash in between): take it over.
        runId = existing;
      }
    }
    const meta: RunMeta = {
      id: runId,
      workflow: { name: request.workflow.name, version: request.version },
      definition: request.workflow,
      inputs,
      trigger: request.trigger,
      createdAt: new Date().toISOString(),
    };
    await this.submissions.add(meta);
    await this.store.announce(meta);
    return { run: RunStore.initialDocument(meta), created: true };
  }

  /** The run document; falls back to the root job while the record is being written. */
  async getRun(runId: string): Promise<RunDocument | undefined> {
    const run = await this.store.getRun(runId);
    if (run) return run;
    const root = await Job.fromId<RunMeta>(this.queues.runs, runId);
    if (!root) return undefined;
    await this.store.announce(root.data);
    return this.store.getRun(runId);
  }

  /**
   * Requests cancellation: running steps are stopped by their workers, the rest are skipped as
   * they come up. Steps waiting out a retry backoff are woken so the run ends promptly.
   */
  async cancel(runId: string): Promise<RunDocument> {
    const outcome = await this.store.requestCancel(runId);
    if (outcome === 'missing') throw new NotFoundError(`no run "${runId}"`);
    if (outcome === 'finished') throw new ConflictError(`run "${runId}" has already finished`);
    const run = (await this.store.getRun(runId))!;
    // Steps (and fan-out instances) waiting out a retry backoff are in `queued` with a delayed job.
    const waiting: Array<[executor: string, jobId: string]> = [];
    for (const [stepId, view] of Object.entries(run.steps)) {
      const jobId = stepJobId(runId, stepId);
      if (view.status === 'queued') waiting.push([view.executor!, jobId]);
      for (const [host, instance] of Object.entries(view.instances ?? {})) {
        if (instance.status === 'queued') waiting.push([view.executor!, `${jobId}@${host}`]);
      }
    }
    await Promise.all(
      waiting.map(async ([executor, jobId]) => {
        const queue = this.queues.step(executor);
        if ((await queue.getJobState(jobId)) !== 'delayed') return;
        // A job that left `delayed` meanwhile is already on its way: nothing to wake.
        await queue
          .getBackend()
          .promote(jobId)
          .catch(() => undefined);
      }),
    );
    return run;
  }
}
