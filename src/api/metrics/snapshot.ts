/**
 * Everything one `/metrics` scrape reports, read from Redis in a few concurrent round trips whose
 * cost does not depend on how many runs are kept: per-queue counts (BullMQ's `getJobCounts`),
 * the job next in line of each wait list, the counters hash (src/store/stats.ts), the worker
 * heartbeats, the event bus's consumer groups, and a timed PING.
 */
import type { Queue } from 'bullmq';
import type { RedisClient } from '../../redis-client.ts';
import { readStats, type Stats, type WorkerHeartbeat } from '../../store/index.ts';
import type { ApiDeps } from '../context.ts';

/** The job states reported per queue. */
export const QUEUE_STATES = [
  'waiting',
  'active',
  'delayed',
  'waiting-children',
  'failed',
  'completed',
] as const;

/** One queue's part of a scrape. */
export interface QueueSnapshot {
  name: string;
  counts: Record<(typeof QUEUE_STATES)[number], number>;
  /** Seconds since the job next in line became due (created + delay); 0 when none waits. */
  oldestWaitingSeconds: number;
}

/** One scrape's data. */
export interface MetricsSnapshot {
  queues: QueueSnapshot[];
  stats: Stats;
  workers: WorkerHeartbeat[];
  /** The shared SSE reader of this API process (src/store/event-feed.ts). */
  feed: { followers: number; runs: number; lagMs: number };
  /** Consumer groups of the event bus stream with their lag (entries not yet read). */
  busGroups: Array<{ name: string; lag: number }>;
  redisPingSeconds: number;
}

async function queueSnapshot(redis: RedisClient, queue: Queue, now: number): Promise<QueueSnapshot> {
  const [counts, nextId] = await Promise.all([
    queue.getJobCounts(...QUEUE_STATES),
    // Workers take from the right end of the wait list: that job has waited longest for a slot.
    redis.lindex(queue.keys.wait!, -1),
  ]);
  let oldestWaitingSeconds = 0;
  if (nextId) {
    const [timestamp, delay] = await redis.hmget(queue.toKey(nextId), 'timestamp', 'delay');
    const due = Number(timestamp) + (Number(delay) || 0);
    if (Number.isFinite(due) && due > 0) oldestWaitingSeconds = Math.max(0, now - due) / 1000;
  }
  return {
    name: queue.name,
    counts: Object.fromEntries(QUEUE_STATES.map((s) => [s, counts[s] ?? 0])) as QueueSnapshot['counts'],
    oldestWaitingSeconds,
  };
}

/** XINFO GROUPS of the bus (Redis 7 reports each group's lag); none when the stream is absent. */
async function busGroups(redis: RedisClient, key: string): Promise<MetricsSnapshot['busGroups']> {
  let reply: unknown[];
  try {
    reply = (await redis.xinfo('GROUPS', key)) as unknown[];
  } catch (err) {
    if (/no such key/i.test((err as Error).message)) return [];
    throw err;
  }
  return reply.map((fields) => {
    const pairs = fields as Array<string | number | null>;
    const get = (name: string) => pairs[pairs.indexOf(name) + 1];
    return { name: String(get('name')), lag: Number(get('lag') ?? 0) };
  });
}

/** Reads one scrape's data. */
export async function readSnapshot(deps: ApiDeps): Promise<MetricsSnapshot> {
  const now = Date.now();
  const { redis } = deps;
  const pinged = process.hrtime.bigint();
  const ping = redis.ping().then(() => Number(process.hrtime.bigint() - pinged) / 1e9);
  const [redisPingSeconds, queues, stats, workers, groups] = await Promise.all([
    ping,
    Promise.all(deps.queues.all().map((queue) => queueSnapshot(redis, queue, now))),
    readStats(redis, deps.store.keys),
    deps.workers.list(),
    busGroups(redis, deps.store.keys.bus()),
  ]);
  return { queues, stats, workers, feed: deps.events.stats(), busGroups: groups, redisPingSeconds };
}
