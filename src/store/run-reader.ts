/**
 * The read side of the run records: run documents, step statuses and snapshots, event streams,
 * logs and the listing indexes. `RunStore` extends it with the writes; kept apart so the reads,
 * which never run a script, are found in one place (as BullMQ's `QueueGetters` under `Queue`).
 */

import type { RunMeta } from '../flows/index.ts';
import type { RedisClient } from '../redis-client.ts';
import { type Keys, keys } from './keys.ts';
import { runDocument } from './run-document.ts';
import {
  FINAL_RUN_STATUSES,
  type RunDocument,
  type RunEvent,
  type StepDetails,
  type StepSnapshot,
  type StepStatus,
  toEvent,
} from './run-types.ts';
import { type ScriptedRedis, withScripts } from './scripts.ts';

/** A run's place in a listing index: its id and its score (creation time, ms). */
export interface RunIndexEntry {
  id: string;
  score: number;
}

/** Reads of the run records over one Redis connection and prefix. */
export class RunReader {
  readonly keys: Keys;
  protected readonly redis: ScriptedRedis;

  constructor(
    redis: RedisClient,
    /** Conveyor's key prefix, without the hash tag's braces. */
    readonly prefix: string,
  ) {
    this.redis = withScripts(redis);
    this.keys = keys(prefix);
  }

  /** The connection, for stores that share it (concurrency groups). */
  get connection(): RedisClient {
    return this.redis;
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
      status === null ? 'unknown' : FINAL_RUN_STATUSES.has(status as string) ? 'ended' : 'active',
    );
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
