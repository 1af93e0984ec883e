/**
 * Live workers, from their heartbeats. Each worker writes its heartbeat every few seconds as a
 * JSON string under `{p}:rec:worker:<id>` that expires after about three intervals (a worker that
 * dies vanishes on its own), and scores its id by that expiry time in the sorted set
 * `{p}:rec:workers`, so listing costs one ZRANGE and one MGET, never a SCAN. Read by `/metrics`
 * and `GET /v1/workers`.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';

/** One worker's heartbeat: what it serves and how busy it is. */
export interface WorkerHeartbeat {
  /** Unique per worker process: `<host>-<pid>-<random>`. */
  id: string;
  host: string;
  pid: number;
  /** Executors served (`WORKER_EXECUTORS`). */
  executors: string[];
  /** `WORKER_TAGS`. */
  tags: string[];
  /** Step slots per executor queue (`WORKER_CONCURRENCY` applies to each). */
  concurrency: number;
  /** Slots in use per executor, at `lastSeen`. */
  busy: Record<string, number>;
  /** Conveyor version the worker runs. */
  version: string;
  startedAt: string;
  lastSeen: string;
  /** How long this heartbeat counts without a newer one (about three intervals). */
  ttlMs: number;
}

/** The registry over one Redis connection and prefix. */
export class WorkerRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Writes a heartbeat, live for `heartbeat.ttlMs`. */
  async record(heartbeat: WorkerHeartbeat): Promise<void> {
    await this.redis
      .multi()
      .set(this.keys.worker(heartbeat.id), JSON.stringify(heartbeat), 'PX', heartbeat.ttlMs)
      .zadd(this.keys.workers(), Date.parse(heartbeat.lastSeen) + heartbeat.ttlMs, heartbeat.id)
      .exec();
  }

  /** Removes a worker at once (it is stopping). */
  async remove(id: string): Promise<void> {
    await this.redis.multi().del(this.keys.worker(id)).zrem(this.keys.workers(), id).exec();
  }

  /** Every live worker, by id; ids whose heartbeat expired are dropped from the index. */
  async list(now = Date.now()): Promise<WorkerHeartbeat[]> {
    const [[, ids]] = ((await this.redis
      .multi()
      .zrangebyscore(this.keys.workers(), now, '+inf')
      .zremrangebyscore(this.keys.workers(), '-inf', `(${now}`)
      .exec()) ?? [[null, []]]) as [[unknown, string[]]];
    if (ids.length === 0) return [];
    const values = await this.redis.mget(...ids.map((id) => this.keys.worker(id)));
    return values
      .filter((value): value is string => value !== null)
      .map((value) => JSON.parse(value) as WorkerHeartbeat)
      .sort((a, b) => a.id.localeCompare(b.id));
  }
}
