/**
 * Run records and their event streams in Redis: the source of truth for statuses, outputs and
 * events (BullMQ's parent/child links only wake steps up). Every state change and its event are
 * written by one Lua script, so a reader never sees one without the other. This file holds the
 * writes; the reads are in run-reader.ts, fan-out instances in instance-records.ts.
 */

import type { RunMeta } from '../flows/index.ts';
import type { RedisClient } from '../redis-client.ts';
import { InstanceRecords } from './instance-records.ts';
import { RunReader } from './run-reader.ts';
import {
  type EventInput,
  FINAL_STEP_STATUSES,
  type StepDetails,
  type StepSnapshot,
  type StepStatus,
} from './run-types.ts';
import { ScriptBatch } from './script-batch.ts';
import { stepFinishedCounters } from './stats.ts';

/** What `startStep` found and did. */
export interface StartReply {
  outcome: 'missing' | 'final' | 'started' | 'decide' | 'early' | 'interrupted';
  current?: StepStatus;
  /** The attempt started here, or the latest one when none was. */
  attempt: number;
  /** How many times the step's attempts were interrupted so far. */
  interruptions: number;
  /** The time written as the attempt's start. */
  startedAt: string;
  snapshot: StepSnapshot;
}

/** One move of a step's record (transition-step.lua). */
export interface StepMove {
  runId: string;
  stepId: string;
  status: StepStatus;
  details?: StepDetails;
  event?: EventInput;
  /** The steps that need this one, with their needs: the script marks them queued once ready. */
  dependents?: Array<{ id: string; needs: string[] }>;
  /** Fences the write: it applies only while this attempt is the step's latest. */
  attempt?: number;
}

/** The run store over one Redis connection and prefix: the reads of `RunReader`, and the writes. */
export class RunStore extends RunReader {
  /** The host-instance records of fan-out steps. */
  readonly instances: InstanceRecords;
  private readonly moves: ScriptBatch;
  private readonly starts: ScriptBatch;

  /** `workerId`: the worker this store writes for, named in the `step.started` events it writes. */
  constructor(
    redis: RedisClient,
    prefix: string,
    private readonly workerId = '',
  ) {
    super(redis, prefix);
    this.instances = new InstanceRecords(this.redis, this.keys);
    this.moves = new ScriptBatch(this.redis, 'transitionStep', this.keys.stats());
    this.starts = new ScriptBatch(this.redis, 'startStep', this.keys.stats());
  }

  /** Creates the run record (idempotent). */
  async announce(meta: RunMeta): Promise<boolean> {
    const steps = meta.definition.order;
    const roots = steps.filter((id) => meta.definition.steps[id]!.needs.length === 0);
    const others = steps.filter((id) => meta.definition.steps[id]!.needs.length > 0);
    const created = await this.redis.announceRun(
      this.keys.run(meta.id),
      this.keys.events(meta.id),
      this.keys.runs(),
      this.keys.workflowRuns(meta.workflow.name),
      this.keys.activeRuns(),
      this.keys.stats(),
      JSON.stringify(meta),
      Date.parse(meta.createdAt),
      meta.createdAt,
      meta.id,
      roots.join(','),
      others.join(','),
      meta.workflow.name,
      meta.retentionSeconds ?? '',
      meta.idempotencyKey ?? '',
    );
    return created === 1;
  }

  /**
   * Moves a step to `move.status` with its details and event. Returns false when nothing was
   * written (already final, or a stale attempt): the caller lost a race and must not act.
   */
  transition(move: StepMove): Promise<boolean> {
    return this.queueTransition(move).applied;
  }

  /**
   * `transition`, without waiting for the reply: the move goes out with every other move queued
   * in this tick, in one script call (transition-step.lua, script-batch.ts). `sent` settles once that call is
   * written to the connection, so what the caller sends next on it reaches Redis after the move;
   * `applied` settles with the result (true applied, false refused) and rejects when the run has
   * no record or Redis failed.
   */
  queueTransition(move: StepMove): { sent: Promise<void>; applied: Promise<boolean> } {
    const { runId, stepId, status, details, event, dependents = [], attempt } = move;
    const at = new Date().toISOString();
    const queued = this.moves.add({
      run: this.keys.run(runId),
      events: this.keys.events(runId),
      args: [
        stepId,
        status,
        details ? JSON.stringify(details) : '',
        event ? JSON.stringify({ runId, at, ...event }) : '',
        event?.type ?? '',
        at,
        runId,
        dependents.map((d) => `${d.id}=${d.needs.join(',')}`).join(';'),
        attempt === undefined ? '' : String(attempt),
        FINAL_STEP_STATUSES.has(status) && details ? stepFinishedCounters(status, details) : '',
      ],
    });
    const applied = queued.reply.then((result) => {
      if (result === -1) throw new Error(`run ${runId} has no record`);
      return result === 1;
    });
    return { sent: queued.sent, applied };
  }

  /** Appends an event that changes no state (`step.log`, `step.progress`, `step.retrying`…). */
  async event(runId: string, event: EventInput): Promise<void> {
    const data = JSON.stringify({ runId, at: new Date().toISOString(), ...event });
    await this.redis.xadd(this.keys.events(runId), '*', 'type', event.type, 'data', data);
  }

  /**
   * Appends log text to the stored log of a step attempt (or of its host instance's attempt) and
   * publishes it as one `step.log` event.
   */
  async appendLog(
    target: { runId: string; stepId: string; attempt: number; host?: string },
    stream: 'stdout' | 'stderr',
    text: string,
  ): Promise<void> {
    const { runId, stepId, attempt, host } = target;
    const at = new Date().toISOString();
    const data = JSON.stringify({
      runId,
      type: 'step.log',
      at,
      step: stepId,
      ...(host && { host }),
      attempt,
      stream,
      text,
    });
    await this.redis
      .multi()
      .append(
        host ? this.keys.instanceLog(runId, stepId, host, attempt) : this.keys.log(runId, stepId, attempt),
        text,
      )
      .xadd(this.keys.events(runId), '*', 'type', 'step.log', 'data', data)
      .exec();
  }

  /**
   * Publishes events a step emitted to the event bus (a stream capped near 100,000 entries):
   * what `on.event` triggers will start workflows from.
   */
  async publish(
    source: { runId: string; stepId: string; host?: string },
    events: Array<{ type: string; payload: unknown }>,
  ) {
    if (events.length === 0) return;
    const at = new Date().toISOString();
    const multi = this.redis.multi();
    for (const event of events) {
      const data = JSON.stringify({ type: event.type, payload: event.payload, source, at });
      multi.xadd(this.keys.bus(), 'MAXLEN', '~', 100_000, '*', 'type', event.type, 'data', data);
    }
    await multi.exec();
  }

  /**
   * Records the run's final status and terminal event; false when it was already final. A run
   * with a retention gets its TTLs here and enters the expiry index (finish-run.lua).
   */
  async finish(
    runId: string,
    status: 'succeeded' | 'failed' | 'cancelled',
    extra: Record<string, unknown> = {},
  ) {
    const at = new Date().toISOString();
    const type = `run.${status}`;
    const result = await this.redis.finishRun(
      this.keys.run(runId),
      this.keys.events(runId),
      this.keys.expiries(),
      this.keys.activeRuns(),
      this.keys.stats(),
      status,
      at,
      JSON.stringify({ runId, type, at, ...extra }),
      Date.parse(at),
      this.keys.records(),
      runId,
    );
    return result === 1;
  }

  /** Tells every worker that a run ended (they drop what they keep for it). */
  async announceRunEnded(runId: string): Promise<void> {
    await this.redis.publish(this.keys.endedChannel(), runId);
  }

  /** Marks a run cancel-requested and tells workers. */
  async requestCancel(runId: string): Promise<'requested' | 'already' | 'missing' | 'finished'> {
    const result = (await this.redis.requestCancel(this.keys.run(runId))) as number;
    if (result === -1) return 'missing';
    if (result === -2) return 'finished';
    await this.redis.publish(this.keys.cancelChannel(), runId);
    return result === 1 ? 'requested' : 'already';
  }

  /**
   * Begins an attempt of a step (start-step.lua): reads the step's state and the states of
   * `reads` (its direct needs first), ends an interrupted attempt, and in mode `auto` (every
   * need succeeded) or `force` marks the step running with a new attempt number. The snapshot
   * holds the details of `reads` only with `options.details` (else those of failed ones alone).
   */
  async startStep(
    runId: string,
    stepId: string,
    reads: string[],
    options: {
      needs: number;
      mode: 'auto' | 'read' | 'force';
      executor: string;
      continueOnError: boolean;
      maxInterruptions: number;
      /** Read the details (outputs) of `reads` too. */
      details: boolean;
    },
  ): Promise<StartReply> {
    const at = new Date().toISOString();
    // Sent with the other starts of this tick, in one call of start-step.lua.
    const { reply: queued } = this.starts.add({
      run: this.keys.run(runId),
      events: this.keys.events(runId),
      args: [
        stepId,
        runId,
        at,
        options.mode,
        options.executor,
        options.continueOnError ? '1' : '0',
        options.maxInterruptions,
        options.needs,
        this.workerId,
        options.details ? '1' : '0',
        ...reads,
      ],
    });
    const reply = (await queued) as [number, string, string, number, number, ...string[]];
    const [code, current, cancel, attempt, interruptions] = reply;
    const snapshot: StepSnapshot = { cancelRequested: cancel === '1', status: {}, details: {} };
    reads.forEach((id, i) => {
      snapshot.status[id] = (reply[5 + i * 2] || undefined) as StepStatus | undefined;
      const raw = reply[6 + i * 2] as string | undefined;
      snapshot.details[id] = raw ? (JSON.parse(raw) as StepDetails) : undefined;
    });
    const outcome = (['missing', 'final', 'started', 'decide', 'early', 'interrupted'] as const)[code + 1]!;
    if (current) snapshot.status[stepId] = current as StepStatus;
    return {
      outcome,
      current: (current || undefined) as StepStatus | undefined,
      attempt: Number(attempt ?? 0),
      interruptions: Number(interruptions ?? 0),
      startedAt: at,
      snapshot,
    };
  }

  /**
   * Announces that a queued or pending step waits for a worker nobody live provides (`reason`):
   * a `step.waiting` event, once per reason; `undefined` forgets the last one. True when written.
   */
  async flagWaiting(runId: string, stepId: string, reason: string | undefined): Promise<boolean> {
    const result = await this.redis.flagWaiting(
      this.keys.run(runId),
      this.keys.events(runId),
      stepId,
      reason ?? '',
      new Date().toISOString(),
      runId,
    );
    return result === 1;
  }
}
