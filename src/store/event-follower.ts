/**
 * A single follower with connections of its own (benchmarks, tests, tools): the same replay and
 * live reading as the API's shared `EventFeed`, on a duplicated connection that waits out a
 * Redis restart instead of failing. The API serves its streams from one shared feed instead.
 */
import type { Redis } from 'ioredis';
import { EventFeed } from './event-feed.ts';
import type { Keys } from './keys.ts';
import type { RunEvent } from './run-types.ts';

/**
 * Yields the run's events after `afterId` (all of them when omitted) until the terminal one, and
 * `null` after each quiet spell so the caller can send a keep-alive.
 */
export async function* followEvents(
  source: Redis,
  keys: Keys,
  runId: string,
  afterId: string | undefined,
  signal: AbortSignal,
): AsyncGenerator<RunEvent | null> {
  const redis = source.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true });
  const feed = new EventFeed(redis, keys);
  try {
    yield* feed.follow(runId, afterId, signal);
  } finally {
    await feed.close();
    redis.disconnect();
  }
}
