/**
 * Run records and their event streams in Redis: the source of truth for statuses, outputs and
 * events (BullMQ's parent/child links only wake steps up). Every state change and its event are
 * written by one Lua script, so a reader never sees one without the other.
 */

import { type RunMeta, stepQueueName } from '../flows/index.ts';
import type { RedisClient } from '../redis-client.ts';
import { type Keys, keys } from './keys.ts';
import {
  type EventInput,
  FINAL_STEP_STATUSES,
  type InstanceView,
  type RunDocument,
  type RunEvent,
  type RunStatus,
  type StepDetails,
  type StepSnapshot,
  type StepStatus,
  type StepView,
  toEvent,
} from './run-types.ts';
import { ScriptBatch } from './script-batch.ts';
import { type ScriptedRedis, withScripts } from './scripts.ts';
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

/** A run's place in a listing index: its id and its score (creation time, ms). */
export interface RunIndexEntry {
  id: string;
  score: number;
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

/** The run store over one Redis connection and prefix. */
export class RunStore {
  readonly keys: Keys;
  private readonly redis: ScriptedRedis;
  private readonly moves: ScriptBatch;
  private readonly starts: ScriptBatch;

  /** `workerId`: the worker this store writes for, named in the `step.started` events it writes. */
  constructor(
    redis: RedisClient,
    /** Conveyor's key prefix, without the hash tag's braces. */
    readonly prefix: string,
    private readonly workerId = '',
  ) {
    this.redis = withScripts(redis);
    this.keys = keys(prefix);
    this.moves = new ScriptBatch(this.redis, 'transitionStep', this.keys.stats());
    this.starts = new ScriptBatch(this.redis, 'startStep', this.keys.stats());
  }

  /** The connection, for stores that share it (concurrency groups). */
  get connection(): RedisClient {
    return this.redis;
  }

  /** The document of a run just announced, derived from its meta (no read-back). */
  static initialDocument(meta: RunMeta, unserved: Record<string, string> = {}): RunDocument {
    const fields: Record<string, string> = {};
    for (const id of meta.definition.order) {
      fields[`st:${id}`] = meta.definition.steps[id]!.needs.length === 0 ? 'queued' : 'pending';
    }
    return runDocument(meta, fields, unserved);
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
   * Moves a host instance of a fan-out step. Moving to `running` begins an attempt: the result
   * is its number, or `'interrupted'` when the instance's workers died more than
   * `maxInterruptions` times. Otherwise true when applied, false when nothing was written
   * (already final, or `attempt` is stale).
   */
  async transitionInstance(
    runId: string,
    stepId: string,
    host: string,
    instance: InstanceView,
    event: EventInput | undefined,
    options: { attempt?: number; maxInterruptions?: number } = {},
  ): Promise<number | boolean | 'interrupted'> {
    const at = new Date().toISOString();
    const result = (await this.redis.transitionInstance(
      this.keys.run(runId),
      this.keys.events(runId),
      `${stepId}@${host}`,
      instance.status,
      JSON.stringify(instance),
      event ? JSON.stringify({ runId, at, ...event }) : '',
      event?.type ?? '',
      options.attempt === undefined ? '' : String(options.attempt),
      options.maxInterruptions ?? 0,
      `${runId}|${stepId}|${host}|${at}`,
    )) as number;
    if (result === -1) throw new Error(`run ${runId} has no record`);
    if (result === -2) return 'interrupted';
    if (instance.status === 'running') return result;
    return result === 1;
  }

  /** The instances of a fan-out step, by host (hosts without a record are absent). */
  async instances(runId: string, stepId: string, hosts: string[]): Promise<Record<string, InstanceView>> {
    if (hosts.length === 0) return {};
    const values = await this.redis.hmget(this.keys.run(runId), ...hosts.map((h) => `i:${stepId}@${h}`));
    const out: Record<string, InstanceView> = {};
    hosts.forEach((host, i) => {
      if (values[i]) out[host] = JSON.parse(values[i]!) as InstanceView;
    });
    return out;
  }

  /**
   * Every instance record of a step, whatever host list its details hold now: for a step that
   * ends without its fan-out (its earlier attempts' hosts). Scans the run hash: for rare paths.
   */
  async instancesOf(runId: string, stepId: string): Promise<Record<string, InstanceView>> {
    const out: Record<string, InstanceView> = {};
    const field = `i:${stepId}@`;
    let cursor = '0';
    do {
      const [next, page] = await this.redis.hscan(
        this.keys.run(runId),
        cursor,
        'MATCH',
        `${field}*`,
        'COUNT',
        1000,
      );
      cursor = next;
      for (let i = 0; i < page.length; i += 2)
        out[page[i]!.slice(field.length)] = JSON.parse(page[i + 1]!) as InstanceView;
    } while (cursor !== '0');
    return out;
  }

  /** Marks a fan-out step failed-fast (its pending instances will not start) and tells workers. */
  async failFast(runId: string, stepId: string): Promise<void> {
    await this.redis.hset(this.keys.run(runId), `ff:${stepId}`, '1');
    await this.redis.publish(this.keys.cancelChannel(), `${runId}/${stepId}`);
  }

  /** True when a fan-out step was failed-fast. */
  async isFailedFast(runId: string, stepId: string): Promise<boolean> {
    return (await this.redis.hget(this.keys.run(runId), `ff:${stepId}`)) === '1';
  }

  /** The stored log text of one attempt of a host instance. */
  async getInstanceLog(runId: string, stepId: string, host: string, attempt: number): Promise<string> {
    return (await this.redis.get(this.keys.instanceLog(runId, stepId, host, attempt))) ?? '';
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

  /**
   * For each run id: `ended`, `active`, or `unknown` (no record under this prefix: expired,
   * deleted, or another prefix's run sharing the machine).
   */
  async runStates(runIds: string[]): Promise<Array<'ended' | 'active' | 'unknown'>> {
    const multi = this.redis.multi();
    for (const id of runIds) multi.hget(this.keys.run(id), 'status');
    const replies = (await multi.exec()) ?? [];
    return replies.map(([, status]) =>
      status === null
        ? 'unknown'
        : ['succeeded', 'failed', 'cancelled'].includes(status as string)
          ? 'ended'
          : 'active',
    );
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

  /** How many events each run's stream holds (0 for none), in one round trip. */
  async eventCounts(runIds: string[]): Promise<number[]> {
    if (runIds.length === 0) return [];
    const multi = this.redis.multi();
    for (const id of runIds) multi.xlen(this.keys.events(id));
    const replies = (await multi.exec()) ?? [];
    return replies.map(([, count]) => Number(count ?? 0));
  }

  /** Runs not final yet, oldest first, created before `before` (ms), at most `limit`. */
  async activeRuns(before: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.activeRuns(), '-inf', before, 'LIMIT', 0, limit);
  }

  /** Reads what a step needs to decide and run: meta, cancel flag, and some steps' states. */
  async snapshot(runId: string, stepIds: string[], withMeta: boolean): Promise<StepSnapshot> {
    const fields = ['cancel', 'meta'].slice(0, withMeta ? 2 : 1);
    for (const id of stepIds) fields.push(`st:${id}`, `s:${id}`);
    const values = await this.redis.hmget(this.keys.run(runId), ...fields);
    const first = fields.length - stepIds.length * 2;
    const status: StepSnapshot['status'] = {};
    const details: StepSnapshot['details'] = {};
    stepIds.forEach((id, i) => {
      status[id] = (values[first + i * 2] ?? undefined) as StepStatus | undefined;
      const raw = values[first + 1 + i * 2];
      details[id] = raw ? (JSON.parse(raw) as StepDetails) : undefined;
    });
    return {
      meta: withMeta && values[1] ? (JSON.parse(values[1]) as RunMeta) : undefined,
      cancelRequested: values[0] === '1',
      status,
      details,
    };
  }

  /** One step's status alone (a gate's check: the step's details, outputs included, stay in Redis). */
  async stepStatus(runId: string, stepId: string): Promise<StepStatus | undefined> {
    return ((await this.redis.hget(this.keys.run(runId), `st:${stepId}`)) ?? undefined) as
      | StepStatus
      | undefined;
  }

  /** The statuses of every step of a run. */
  async statuses(runId: string): Promise<Record<string, StepStatus>> {
    const all = await this.redis.hgetall(this.keys.run(runId));
    const out: Record<string, StepStatus> = {};
    for (const [field, value] of Object.entries(all)) {
      if (field.startsWith('st:')) out[field.slice(3)] = value as StepStatus;
    }
    return out;
  }

  /** The run document, or undefined when there is no such run. */
  async getRun(runId: string): Promise<RunDocument | undefined> {
    const [[, all], [, unserved]] = (await this.redis
      .multi()
      .hgetall(this.keys.run(runId))
      .hgetall(this.keys.unserved())
      .exec()) as [[unknown, Record<string, string>], [unknown, Record<string, string>]];
    if (!all.meta) return undefined;
    return runDocument(JSON.parse(all.meta) as RunMeta, all, unserved);
  }

  /** Events after `afterId` (exclusive; from the start when omitted), at most `count`. */
  async readEvents(runId: string, afterId?: string, count = 1000): Promise<RunEvent[]> {
    const start = afterId ? `(${afterId}` : '-';
    const entries = await this.redis.xrange(this.keys.events(runId), start, '+', 'COUNT', count);
    return entries.map(toEvent);
  }

  /** The stored log text of one attempt of a step. */
  async getLog(runId: string, stepId: string, attempt: number): Promise<string> {
    return (await this.redis.get(this.keys.log(runId, stepId, attempt))) ?? '';
  }

  /**
   * Index entries, newest first (ties in reverse id order, as Redis sorts equal scores),
   * optionally of one workflow, strictly after `after`: runs created in the same millisecond as
   * the cursor's are neither skipped nor repeated.
   */
  async listRuns(options: {
    workflow?: string;
    limit: number;
    after?: RunIndexEntry;
  }): Promise<RunIndexEntry[]> {
    const key = options.workflow ? this.keys.workflowRuns(options.workflow) : this.keys.runs();
    const { after, limit } = options;
    const out: RunIndexEntry[] = [];
    // From the cursor's score inclusive: the entries sharing it come first and are passed over.
    const max = after ? String(after.score) : '+inf';
    for (let offset = 0; out.length < limit; offset += limit) {
      const flat = await this.redis.zrevrangebyscore(key, max, '-inf', 'WITHSCORES', 'LIMIT', offset, limit);
      for (let i = 0; i < flat.length && out.length < limit; i += 2) {
        const entry = { id: flat[i]!, score: Number(flat[i + 1]) };
        if (after && entry.score === after.score && entry.id >= after.id) continue;
        out.push(entry);
      }
      if (flat.length < limit * 2) break;
    }
    return out;
  }
}

/** Assembles a run document from its meta and the fields of its record hash. */
function runDocument(
  meta: RunMeta,
  all: Record<string, string>,
  unserved: Record<string, string> = {},
): RunDocument {
  const steps: Record<string, StepView> = {};
  for (const id of meta.definition.order) {
    const details = all[`s:${id}`] ? (JSON.parse(all[`s:${id}`]!) as StepDetails) : undefined;
    const step = meta.definition.steps[id]!;
    const status = (all[`st:${id}`] ?? 'pending') as StepStatus;
    const waiting = unserved[stepQueueName(step.executor, step.runsOn ?? [])];
    steps[id] = {
      status,
      executor: step.executor,
      needs: step.needs,
      ...(step.name !== undefined && { name: step.name }),
      ...(step.runsOn?.length && { runsOn: step.runsOn }),
      ...details,
      // Only while it waits: once a worker takes it the flag is history.
      ...(waiting && (status === 'queued' || status === 'pending') && { waiting }),
    };
    if (details?.hosts) {
      const instances: Record<string, InstanceView> = {};
      for (const host of details.hosts) {
        const raw = all[`i:${id}@${host}`];
        instances[host] = raw ? (JSON.parse(raw) as InstanceView) : { status: 'pending' };
      }
      steps[id]!.instances = instances;
    }
  }
  return {
    id: meta.id,
    workflow: meta.workflow,
    status: (all.status ?? 'queued') as RunStatus,
    cancelRequested: all.cancel === '1',
    ...(all.cancelReason && { cancelReason: all.cancelReason }),
    ...(meta.concurrency && { concurrency: meta.concurrency }),
    inputs: meta.inputs,
    trigger: meta.trigger,
    createdAt: meta.createdAt,
    startedAt: all.startedAt ?? null,
    finishedAt: all.finishedAt ?? null,
    steps,
  };
}
