/**
 * Starts runs: inputs checked, the flow compiled and added in one MULTI (the run exists whole or
 * not at all), then the run record announced. Used by every way a run starts (HTTP today;
 * webhooks, schedules and events later).
 */
import { randomBytes } from 'node:crypto';
import { type FlowProducer, Job, type Queue } from 'bullmq';
import type { Logger } from 'pino';
import { ConflictError, NotFoundError } from '../errors.ts';
import {
  classifyQueues,
  digestOf,
  QUEUES,
  type RunMeta,
  resolveInputs,
  stepJobId,
  type Workflow,
} from '../flows/index.ts';
import { connectionSpec, type RedisClient } from '../redis-client.ts';
import {
  initialDocument,
  type RunDocument,
  type RunStore,
  type WorkerHeartbeat,
  type WorkerRegistry,
} from '../store/index.ts';
import { admitRun, evaluateGroup, withdrawPending } from '../triggers/index.ts';
import { requestLogger } from './middleware/index.ts';
import { type DefinitionSource, SubmissionThread } from './submissions.ts';

/** A new run id: time-ordered, URL-safe, never all digits and without ':' (BullMQ job id rules). */
export function newRunId(): string {
  return `run_${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
}

/** How long the list of live workers is reused between launches. */
const WORKERS_CACHE_MS = 1000;

/** How long an idempotency key names its run (7 days, as the README says). */
const IDEMPOTENCY_TTL_S = 7 * 24 * 3600;

/** What starts a run. */
export interface LaunchRequest {
  workflow: Workflow;
  version: number | null;
  inputs?: unknown;
  trigger: Record<string, unknown>;
  /** Same key (within the workflow), same definition, version and inputs → same run; else a 409. */
  idempotencyKey?: string;
  /** How long the key names its run, in seconds. @defaultValue 7 days */
  idempotencyTtlS?: number;
  /**
   * Where the submission thread finds `workflow` without copying it there: the thread's own
   * check of an ad-hoc definition. A registered version (`version` set) is found by the thread
   * in the workflow store.
   */
  source?: DefinitionSource;
}

/** Starts and cancels runs. */
export class RunLauncher {
  /** Parses, validates, compiles and adds off the event loop (see submissions.ts). */
  readonly submissions: SubmissionThread;
  private workers?: { at: number; list: Promise<WorkerHeartbeat[]> };

  constructor(
    private readonly redis: RedisClient,
    private readonly store: RunStore,
    /** Its connection and prefix are the submission thread's, which adds every run's flow. */
    flows: FlowProducer,
    private readonly queues: { runs: Queue; step: (queueName: string) => Queue },
    private readonly registry: WorkerRegistry,
    /** Seconds a finished run is kept (its keys' TTL, its jobs' age); undefined: until deleted. */
    private readonly retentionSeconds?: number,
    private readonly logger?: Logger,
  ) {
    // The thread adds flows on a connection of its own, to the producer's Redis and prefix.
    this.submissions = new SubmissionThread({
      redis: connectionSpec(flows.opts.connection as RedisClient),
      bullPrefix: flows.opts.prefix ?? 'bull',
      prefix: store.prefix,
    });
  }

  /** Stops the submission thread. */
  async close(): Promise<void> {
    await this.submissions.close();
  }

  /** Starts a run, or returns the existing one for a repeated idempotency key. */
  async launch(request: LaunchRequest): Promise<{ run: RunDocument; created: boolean }> {
    const inputs = resolveInputs(request.workflow, request.inputs);
    const concurrency = evaluateGroup(request.workflow, inputs, request.trigger);
    let runId = newRunId();
    if (request.idempotencyKey !== undefined) {
      const claim = await this.claimKey(request, request.idempotencyKey, inputs, runId);
      if ('run' in claim) return { run: claim.run, created: false };
      runId = claim.runId;
    }
    const meta: RunMeta = {
      id: runId,
      workflow: { name: request.workflow.name, version: request.version },
      definition: request.workflow,
      inputs,
      trigger: request.trigger,
      createdAt: new Date().toISOString(),
      ...(this.retentionSeconds !== undefined && { retentionSeconds: this.retentionSeconds }),
      ...(request.idempotencyKey !== undefined && { idempotencyKey: request.idempotencyKey }),
      ...(concurrency && { concurrency }),
    };
    const steps = request.workflow.order.map((id) => request.workflow.steps[id]!);
    const queueNames = [...new Set(steps.map((s) => QUEUES.step(s.executor, s.runsOn)))];
    // Before the jobs exist, so workers serving a new tag set start consuming its queue.
    await this.registry.registerQueues(queueNames);
    // The thread compiles, adds and records the run, finding its definition itself.
    const from: DefinitionSource =
      request.source ??
      (request.version === null
        ? { kind: 'meta' }
        : { kind: 'stored', name: request.workflow.name, version: request.version });
    if (meta.concurrency) {
      // Recorded first: a run waiting for its group exists only as its record until admitted.
      await this.submissions.start(meta, { from, flow: false, announce: true });
      await admitRun(
        {
          store: this.store,
          start: (admitted) =>
            this.submissions.start(admitted, {
              from: admitted.id === meta.id ? from : { kind: 'meta' },
              flow: true,
              announce: false,
            }),
          cancel: (id) => this.cancelIfRunning(id),
        },
        meta,
      );
    } else {
      await this.submissions.start(meta, { from, flow: true, announce: true });
    }
    // The run exists now: a failed check must not turn its 202 into an error, and the periodic
    // waiting check (every 2 s, any API or worker) flags its steps anyway.
    const unserved = await this.flagUnserved(meta, queueNames).catch(() => ({}));
    if (this.logger) {
      const { name, version } = meta.workflow;
      const trigger = request.trigger.type;
      requestLogger(this.logger).info(
        { runId, workflow: name, version, trigger, steps: steps.length, status: 'queued' },
        'run started',
      );
    }
    return { run: initialDocument(meta, unserved), created: true };
  }

  /**
   * Says at once which of the run's queues no live worker serves (the run document's `waiting`)
   * and gives its queued steps in them a `step.waiting` event; the periodic waiting check keeps
   * this current afterwards.
   */
  private async flagUnserved(meta: RunMeta, queueNames: string[]): Promise<Record<string, string>> {
    if (!this.workers || Date.now() - this.workers.at > WORKERS_CACHE_MS)
      this.workers = { at: Date.now(), list: this.registry.list() };
    const { unserved, served } = classifyQueues(queueNames, await this.workers.list);
    await this.registry.markUnserved(unserved, served);
    for (const id of meta.definition.order) {
      const step = meta.definition.steps[id]!;
      const reason = unserved[QUEUES.step(step.executor, step.runsOn)];
      if (reason && step.needs.length === 0) await this.store.flagWaiting(meta.id, id, reason);
    }
    return unserved;
  }

  /**
   * Claims an idempotency key for `runId`, storing a digest of what it is used with. The key's
   * run when it was used with the same definition, version and inputs; a `ConflictError`
   * naming that run when it was used with anything else.
   */
  private async claimKey(
    request: LaunchRequest,
    idempotencyKey: string,
    inputs: Record<string, unknown>,
    runId: string,
  ): Promise<{ run: RunDocument } | { runId: string }> {
    const key = this.store.keys.idempotency(request.workflow.name, idempotencyKey);
    const digest = digestOf({ definition: request.workflow, version: request.version, inputs });
    const ttl = request.idempotencyTtlS ?? IDEMPOTENCY_TTL_S;
    const claimed = await this.redis.set(key, `${runId} ${digest}`, 'EX', ttl, 'NX');
    if (claimed === 'OK') return { runId };
    const [existing = '', usedWith] = ((await this.redis.get(key)) ?? '').split(' ');
    // Checked before the run is read: a concurrent first request may not have written it yet.
    if (existing && usedWith && usedWith !== digest) {
      throw new ConflictError(
        `idempotencyKey "${idempotencyKey}" was already used by run ${existing} with different inputs or a different definition; send a new key to start another run`,
      );
    }
    const run = existing ? await this.getRun(existing) : undefined;
    if (run) return { run };
    // Claimed but never written (a crash in between, or a concurrent first request for the same
    // run): start it under that id; BullMQ and announce-run keep one copy. A value without a
    // digest (written before digests were kept, or expired meanwhile) gets ours.
    const id = existing || runId;
    if (!usedWith) await this.redis.set(key, `${id} ${digest}`, 'EX', ttl);
    return { runId: id };
  }

  /** Cancels a run in progress; one that ended (or vanished) meanwhile is left as it is. */
  private async cancelIfRunning(runId: string): Promise<void> {
    await this.cancel(runId).catch((err: unknown) => {
      if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err;
    });
  }

  /** The run document; falls back to the root job while the record is being written. */
  async getRun(runId: string): Promise<RunDocument | undefined> {
    const run = await this.store.getRun(runId);
    if (run) return run;
    const root = await Job.fromId<RunMeta>(this.queues.runs, runId);
    if (!root) return undefined;
    // A finished root outlives its record (deleted, or expired before BullMQ dropped the job):
    // the run is gone, never re-announced.
    if (root.finishedOn !== undefined) return undefined;
    await this.store.announce(root.data);
    return this.store.getRun(runId);
  }

  /**
   * Requests cancellation: running steps are stopped by their workers, the rest are skipped as
   * they come up. Steps waiting out a retry backoff are woken so the run ends promptly.
   */
  async cancel(runId: string): Promise<RunDocument> {
    if (await withdrawPending(this.store, runId)) return (await this.store.getRun(runId))!;
    const outcome = await this.store.requestCancel(runId);
    if (outcome === 'missing') throw new NotFoundError(`no run "${runId}"`);
    if (outcome === 'finished') throw new ConflictError(`run "${runId}" has already finished`);
    const run = (await this.store.getRun(runId))!;
    // Steps (and fan-out instances) waiting out a retry backoff are in `queued` with a delayed job.
    const waiting: Array<[queueName: string, jobId: string]> = [];
    for (const [stepId, view] of Object.entries(run.steps)) {
      const jobId = stepJobId(runId, stepId);
      const queueName = QUEUES.step(view.executor!, view.runsOn);
      if (view.status === 'queued') waiting.push([queueName, jobId]);
      for (const [host, instance] of Object.entries(view.instances ?? {})) {
        if (instance.status === 'queued') waiting.push([queueName, `${jobId}@${host}`]);
      }
    }
    await Promise.all(
      waiting.map(async ([queueName, jobId]) => {
        const queue = this.queues.step(queueName);
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
