/**
 * Worker heartbeats: every worker records one every few seconds, and `list()` returns the live
 * ones (`GET /v1/workers`, the waiting check, metrics).
 *
 * Layout (all under the `{prefix}` hash tag):
 * - `{p}:rec:worker:<id>`: string, the last heartbeat as JSON (`WorkerHeartbeat` below), with a
 *   TTL of `ttlMs` (about three heartbeat intervals): a worker that stops beating disappears.
 * - `{p}:rec:workers`: sorted set, worker id → last seen (ms), so `list()` needs no SCAN;
 *   entries older than the TTL are pruned by `list()`.
 * - `{p}:rec:step-queues`: set of every step queue a run was launched on (`steps-local`,
 *   `steps-local@eu+gpu`): workers consume the ones they serve, the waiting check looks at all.
 * - `{p}:rec:unserved`: hash, step queue → why no live worker serves it (the waiting check
 *   rewrites it; run documents read it for their steps' `waiting`).
 * - `{p}:rec:lease:<name>`: string, holder id with a TTL (`claimLease`).
 */
import type { RedisClient } from '../redis-client.ts';
import { type Keys, keys } from './keys.ts';

/** One heartbeat, as stored (JSON) and listed. */
export interface WorkerHeartbeat {
  /** Unique per worker process: `<host>-<pid>-<random>`. */
  id: string;
  host: string;
  pid: number;
  /** `WORKER_EXECUTORS`. */
  executors: string[];
  /** `WORKER_TAGS`, sorted. */
  tags: string[];
  /** `WORKER_TAGS_ONLY`: untagged steps are not served. */
  tagsOnly: boolean;
  /** `WORKER_CONCURRENCY`: steps this process runs at once, over every queue it serves. */
  concurrency: number;
  /** Slots running a step now. */
  busy: number;
  /** Steps this process has started since it started. */
  started: number;
  /** Conveyor's version (package.json). */
  version: string;
  startedAt: string;
  /** When this heartbeat was written (ISO). */
  lastSeen: string;
}

/** Heartbeats in Redis. */
export class WorkerRegistry {
  private readonly keys: Keys;

  /** `ttlMs`: how long a heartbeat counts as live. @defaultValue 6000 */
  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    readonly ttlMs = 6000,
  ) {
    this.keys = keys(prefix);
  }

  /** Records a heartbeat (its `lastSeen` is set here). */
  async record(heartbeat: Omit<WorkerHeartbeat, 'lastSeen'>): Promise<void> {
    const now = Date.now();
    const beat: WorkerHeartbeat = { ...heartbeat, lastSeen: new Date(now).toISOString() };
    await this.redis
      .multi()
      .set(this.keys.worker(beat.id), JSON.stringify(beat), 'PX', this.ttlMs)
      .zadd(this.keys.workers(), now, beat.id)
      .exec();
  }

  /** Removes a worker's heartbeat at once (a worker that stops cleanly). */
  async remove(id: string): Promise<void> {
    await this.redis.multi().del(this.keys.worker(id)).zrem(this.keys.workers(), id).exec();
  }

  /** Adds step queues to the set workers subscribe from (before a run's jobs are added). */
  async registerQueues(names: string[]): Promise<void> {
    if (names.length) await this.redis.sadd(this.keys.stepQueues(), ...names);
  }

  /** Every step queue a run was ever launched on. */
  async queues(): Promise<string[]> {
    return this.redis.smembers(this.keys.stepQueues());
  }

  /** Records which queues no live worker serves (queue → reason); `replace` drops the others. */
  async markUnserved(unserved: Record<string, string>, served: string[], replace = false): Promise<void> {
    const multi = this.redis.multi();
    if (replace) multi.del(this.keys.unserved());
    else if (served.length) multi.hdel(this.keys.unserved(), ...served);
    if (Object.keys(unserved).length) multi.hset(this.keys.unserved(), unserved);
    await multi.exec();
  }

  /**
   * Claims the lease `name` for `ms` unless another holder has it: how one process of many
   * (APIs and workers) runs a periodic job. It is not released; it runs out.
   */
  async claimLease(name: string, holder: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.keys.lease(name), holder, 'PX', ms, 'NX')) === 'OK';
  }

  /** The live workers, by id. */
  async list(): Promise<WorkerHeartbeat[]> {
    const since = Date.now() - this.ttlMs;
    await this.redis.zremrangebyscore(this.keys.workers(), '-inf', `(${since}`);
    const ids = await this.redis.zrangebyscore(this.keys.workers(), since, '+inf');
    if (ids.length === 0) return [];
    const values = await this.redis.mget(...ids.map((id) => this.keys.worker(id)));
    return values
      .filter((v): v is string => v !== null)
      .map((v) => JSON.parse(v) as WorkerHeartbeat)
      .sort((a, b) => a.id.localeCompare(b.id));
  }
}
