/** Per-client request buckets for the API's rate limit, shared by every API process on the Redis. */
import type { RedisClient } from '../redis-client.ts';
import type { Keys } from './keys.ts';
import { type ScriptedRedis, withScripts } from './scripts.ts';

/** What one request got from its bucket. */
export interface RateLimitTake {
  allowed: boolean;
  /** Requests still allowed now. */
  remaining: number;
  /** When refused: ms until one request is allowed again. */
  retryAfterMs: number;
}

/** Token buckets (`rate-limit.lua`), one per client id, under one prefix. */
export class RateLimitStore {
  private readonly redis: ScriptedRedis;

  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
  ) {
    this.redis = withScripts(redis);
  }

  /**
   * Takes one request from `client`'s bucket of `limit` per `windowMs`. `nowMs` replaces Redis's
   * clock (tests step time with it); omitted, every API process reads the same clock.
   */
  async take(client: string, limit: number, windowMs: number, nowMs?: number): Promise<RateLimitTake> {
    const [allowed, remaining, retryAfterMs] = (await this.redis.rateLimit(
      this.keys.rateLimit(client),
      limit,
      windowMs,
      nowMs ?? '',
    )) as [number, number, number];
    return { allowed: allowed === 1, remaining, retryAfterMs };
  }
}
