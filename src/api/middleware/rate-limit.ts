/**
 * A per-client rate limit in Redis (a token bucket, `src/store/lua/rate-limit.lua`), so every
 * API process on the same Redis shares it. A client is its token (by digest) or, with
 * authentication off, its IP address. Probes and scrapes are never limited.
 */
import { createHash } from 'node:crypto';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { checkDuration } from '../../flows/duration.ts';
import type { RateLimitStore } from '../../store/index.ts';
import { HttpError } from '../errors.ts';

/** A limit: `limit` requests per `windowMs`, as a bucket that refills continuously. */
export interface RateLimit {
  limit: number;
  windowMs: number;
}

/** Options of the middleware. */
export interface RateLimitOptions extends RateLimit {
  /** The clock, in ms; omitted, Redis's own (shared by every API process). Tests step it. */
  now?: () => number;
}

/** Paths that are never limited: load balancers, probes and Prometheus call them on a schedule. */
const EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

const WINDOW_WORDS: Record<string, number> = {
  s: 1000,
  sec: 1000,
  second: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
};

/**
 * Parses `CONVEYOR_RATE_LIMIT`: `0` (off), `N` (per minute), `N/s`, `N/min`, `N/h`, or `N/<duration>`
 * such as `100/10s`. Returns `null` for off, or the message of the problem.
 */
export function parseRateLimit(text: string): RateLimit | null | { error: string } {
  const match = /^\s*(\d+)\s*(?:\/\s*(\S+))?\s*$/.exec(text);
  const hint = 'expected 0 (off), N (per minute), or N/s, N/min, N/h, N/<duration> such as 100/10s';
  if (!match) return { error: `"${text}" is not a rate limit: ${hint}` };
  const limit = Number(match[1]);
  if (limit === 0) return null;
  if (!Number.isSafeInteger(limit)) return { error: `"${text}": the count is too large` };
  const per = match[2];
  if (per === undefined) return { limit, windowMs: 60_000 };
  const word = WINDOW_WORDS[per.toLowerCase()];
  if (word) return { limit, windowMs: word };
  const window = checkDuration(per);
  if (!window.ok) return { error: `"${text}": ${hint}` };
  return { limit, windowMs: window.ms };
}

/**
 * The client a request is counted against: its token's digest when the auth middleware checked
 * it (it then set the role), else its address. An unchecked token (authentication off, or a
 * route that needs none) would buy a fresh bucket with every made-up value, so it is ignored.
 */
function clientOf(c: Context): string {
  const checked = c.get('role') !== undefined;
  const bearer = checked ? /^Bearer[ \t]+(\S+)/i.exec(c.req.header('authorization') ?? '')?.[1] : undefined;
  if (bearer) return `t:${createHash('sha256').update(bearer).digest('hex').slice(0, 32)}`;
  try {
    return `ip:${getConnInfo(c).remote.address ?? 'unknown'}`;
  } catch {
    // No socket (app.request() in tests, another runtime): one shared bucket.
    return 'ip:unknown';
  }
}

/** The middleware; it runs after authentication, which tells it whether the token was checked. */
export function rateLimit(store: RateLimitStore, options: RateLimitOptions): MiddlewareHandler {
  const { limit, windowMs, now } = options;
  return async (c, next) => {
    if (EXEMPT.has(c.req.path)) return next();
    const taken = await store.take(clientOf(c), limit, windowMs, now?.());
    if (!taken.allowed) {
      const seconds = Math.max(1, Math.ceil(taken.retryAfterMs / 1000));
      throw new HttpError(
        429,
        'rate_limited',
        `too many requests: the limit is ${limit} per ${windowMs / 1000} s for each token; retry in ${seconds} s`,
        { 'Retry-After': String(seconds), 'X-RateLimit-Limit': String(limit), 'X-RateLimit-Remaining': '0' },
      );
    }
    await next();
    // On the final response: an error answer is a new Response made by the error handler.
    c.res.headers.set('X-RateLimit-Limit', String(limit));
    c.res.headers.set('X-RateLimit-Remaining', String(taken.remaining));
  };
}
