/**
 * Retention of finished runs in our own keys: the expiry index that finish-run.lua fills, the
 * deletion of a run's keys and index entries (delete-run.lua), and the lock that keeps one
 * retention pass at a time across processes. BullMQ's jobs are removed through BullMQ.
 */
import type { RedisClient } from '../redis-client.ts';
import { type Keys, keys } from './keys.ts';
import { type ScriptedRedis, withScripts } from './scripts.ts';

/** A finished run due to go, as the expiry index names it. */
export interface ExpiredRun {
  runId: string;
  /** The run's workflow name; trims its index even when the record has already expired. */
  workflow: string;
}

/** What deleting a run found. */
export type DeleteOutcome = 'deleted' | 'missing' | 'unfinished';

const OUTCOMES: Record<string, DeleteOutcome> = { '1': 'deleted', '-1': 'missing', '-2': 'unfinished' };

/** Our side of retention over one Redis connection and prefix. */
export class RunRetention {
  readonly keys: Keys;
  private readonly redis: ScriptedRedis;

  constructor(redis: RedisClient, prefix: string) {
    this.redis = withScripts(redis);
    this.keys = keys(prefix);
  }

  /** Up to `limit` finished runs whose expiry time is at or before `now` (ms), oldest first. */
  async due(now: number, limit: number): Promise<ExpiredRun[]> {
    const members = await this.redis.zrangebyscore(this.keys.expiries(), '-inf', now, 'LIMIT', 0, limit);
    return members.map(parseMember);
  }

  /** How many finished runs wait in the expiry index. */
  async pending(): Promise<number> {
    return this.redis.zcard(this.keys.expiries());
  }

  /**
   * Deletes each run's keys and index entries in one pipeline (one script call per run).
   * A run that has not finished is left as it is (`unfinished`).
   */
  async delete(runs: Array<{ runId: string; workflow?: string }>): Promise<DeleteOutcome[]> {
    if (runs.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const { runId, workflow } of runs) {
      (pipeline as unknown as ScriptedRedis).deleteRun(
        this.keys.run(runId),
        this.keys.events(runId),
        this.keys.runs(),
        this.keys.expiries(),
        runId,
        workflow ?? '',
        this.keys.records(),
      );
    }
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, code]) => {
      if (err) throw err;
      return OUTCOMES[String(code)]!;
    });
  }

  /** Takes the retention lock for `ttlMs` unless another process holds it. */
  async lock(token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.retentionLock(), token, 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** Extends the lock while it is still ours; false when it was lost. */
  async extendLock(token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.lock(this.keys.retentionLock(), token, 'extend', ttlMs)) === 1;
  }

  /** Releases the lock if it is still ours. */
  async unlock(token: string): Promise<void> {
    await this.redis.lock(this.keys.retentionLock(), token, 'release', 0);
  }
}

/** `<run id>/<workflow>` → its parts (run ids and workflow names contain no `/`). */
function parseMember(member: string): ExpiredRun {
  const slash = member.indexOf('/');
  if (slash < 0) return { runId: member, workflow: '' };
  return { runId: member.slice(0, slash), workflow: member.slice(slash + 1) };
}
