/**
 * A single follower with connections of its own (benchmarks, tests, tools): the same replay and
 * live reading as the API's shared `EventFeed`, on a duplicated connection that waits out a
 * Redis restart instead of failing. The API serves its streams from one shared feed instead.
 */
import { duplicateRedis, type RedisClient } from '../redis-client.ts';
import { EventFeed } from './event-feed.ts';
import type { Keys } from './keys.ts';
import type { RunEvent } from './run-types.ts';

/**
 * Yields the run's events after `afterId` (all of them when omitted) until the terminal one, and
 * `null` after each quiet spell so the caller can send a keep-alive.
 */
export async function* followEvents(
  source: RedisClient,
  keys: Keys,
  runId: string,
  afterId: string | undefined,
  signal: AbortSignal,
): AsyncGenerator<RunEvent | null> {
  const redis = duplicateRedis(source, { maxRetriesPerRequest: null, enableOfflineQueue: true });
  const feed = new EventFeed(redis, keys);
  try {
    yield* feed.follow(runId, afterId, signal);
  } finally {
    await feed.close();
    redis.disconnect();
  }
}
