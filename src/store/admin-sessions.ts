/**
 * Dashboard sessions: a browser logs in once with an admin token and then holds a random
 * session id in a cookie, never the token. Redis keeps only the id's SHA-256 (a reader of Redis
 * cannot replay a cookie) with the role, expiring after `ttlMs`; every API process sees the same
 * sessions, and logging out deletes one at once.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis-client.ts';
import type { Keys } from './keys.ts';

/** Sessions over one Redis connection and prefix. */
export class AdminSessions {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    /** How long a session lasts. @defaultValue 12 h */
    readonly ttlMs = 12 * 3600_000,
  ) {}

  private key(id: string): string {
    return this.keys.adminSession(createHash('sha256').update(id).digest('hex'));
  }

  /** Starts a session for `role`; returns the id the cookie carries. */
  async create(role: string): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    await this.redis.set(this.key(id), role, 'PX', this.ttlMs);
    return id;
  }

  /** The role of a live session, or undefined. */
  async role(id: string): Promise<string | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    return (await this.redis.get(this.key(id))) ?? undefined;
  }

  /** Ends a session. */
  async remove(id: string): Promise<void> {
    await this.redis.del(this.key(id));
  }
}
