/**
 * One pino child logger per request, bound to its `X-Request-Id`, and one log line per request
 * when its answer is ready. The child is in the context (`c.get('logger')`) and in async-local
 * storage, so code that has no context (the run launcher, the error handler) logs with it too.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';

/** What the request middleware puts in the context, for routes and later middleware. */
export interface RequestVariables {
  requestId: string;
  logger: Logger;
  /** The role of the request's token, set by the auth middleware when a token was checked. */
  role?: string;
}

const current = new AsyncLocalStorage<Logger>();

/** The current request's logger, or `fallback` outside a request (a worker, a schedule). */
export function requestLogger(fallback: Logger): Logger {
  return current.getStore() ?? fallback;
}

/**
 * Logs `request` once per request: method, path (never the query: it may carry a token or a
 * cursor), status, duration in ms and the token's role (never the token). An SSE stream's line
 * is written when its headers go out. At `debug` the request headers are logged too, with the
 * credential headers redacted by the logger (src/logger.ts).
 */
export function requestLog(logger: Logger): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    const requestId = c.get('requestId') as string;
    const child = logger.child({ requestId });
    c.set('logger', child);
    await current.run(child, next);
    const status = c.res.status;
    const fields: Record<string, unknown> = {
      method: c.req.method,
      path: c.req.path,
      status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      role: (c.get('role') as string | undefined) ?? null,
    };
    if (child.isLevelEnabled('debug')) fields.headers = Object.fromEntries(c.req.raw.headers);
    if (status >= 500) child.error(fields, 'request');
    else child.info(fields, 'request');
  };
}
