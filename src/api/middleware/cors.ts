/**
 * CORS, off unless `CONVEYOR_CORS_ORIGINS` names the origins a browser page may call the API
 * from (or `*`). Credentials are never allowed: browsers send no cookies or HTTP auth across
 * origins, so a page must send its token in `Authorization` itself.
 */
import type { MiddlewareHandler } from 'hono';
import { cors as honoCors } from 'hono/cors';
import { REQUEST_ID_HEADER } from './request-id.ts';

/** Allowed origins: a list of exact origins, or `*` for any. */
export type CorsOrigins = readonly string[] | '*';

/** Request headers a page may send. */
const ALLOW_HEADERS = ['Authorization', 'Content-Type', 'Last-Event-ID', REQUEST_ID_HEADER];
/** Response headers a page may read. */
const EXPOSE_HEADERS = [
  REQUEST_ID_HEADER,
  'Retry-After',
  'X-RateLimit-Limit',
  'X-RateLimit-Remaining',
  'Idempotent-Replayed',
  'WWW-Authenticate',
];

/**
 * Parses `CONVEYOR_CORS_ORIGINS`: `*`, or comma-separated origins such as
 * `https://ops.example.com,http://localhost:5173` (scheme, host and port only, as browsers send
 * them); blank is off (`undefined`). Returns the message of the first problem instead, if any.
 */
export function parseCorsOrigins(text: string): CorsOrigins | undefined | { error: string } {
  const entries = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  // Set but empty (`CONVEYOR_CORS_ORIGINS=` in a .env): as unset, CORS stays off.
  if (entries.length === 0) return undefined;
  if (entries.length === 1 && entries[0] === '*') return '*';
  if (entries.includes('*')) return { error: '"*" allows every origin: give it alone, not in a list' };
  for (const entry of entries) {
    let origin: string | undefined;
    try {
      origin = new URL(entry).origin;
    } catch {
      // not a URL: reported below
    }
    if (origin !== entry || !/^https?:/.test(entry)) {
      return {
        error: `"${entry}" is not an origin: write scheme://host[:port] with no path or trailing "/" (or "*" alone)`,
      };
    }
  }
  return entries;
}

/** The CORS middleware for `origins`; preflights are answered here, before authentication. */
export function cors(origins: CorsOrigins): MiddlewareHandler {
  return honoCors({
    origin: origins === '*' ? '*' : [...origins],
    allowMethods: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'],
    allowHeaders: ALLOW_HEADERS,
    exposeHeaders: EXPOSE_HEADERS,
    credentials: false,
    maxAge: 600,
  });
}
