/**
 * One pino child logger per request, bound to its `X-Request-Id`, and one log line per request
 * when its answer is ready. The child is in the context (`c.get('logger')`) and in the log
 * context (src/logger.ts), so code that has no Hono context (the run launcher, the error
 * handler) logs with it too, and lines from the process logger still get the request's id.
 */
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { contextLogger, runInLogContext } from '../../logger.ts';

declare module 'hono' {
  /** What the operations middleware puts in every request's context (`c.get(…)`). */
  interface ContextVariableMap {
    /** The request's pino child logger, bound to its id. */
    logger: Logger;
    /** The role of the request's token, set by the auth middleware once it checked one. */
    role?: string;
  }
}

/** The current request's logger, or `fallback` outside a request (a worker, a schedule). */
export function requestLogger(fallback: Logger): Logger {
  return contextLogger(fallback);
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
    const requestId = c.get('requestId');
    const child = logger.child({ requestId });
    c.set('logger', child);
    await runInLogContext({ requestId, logger: child }, next);
    const status = c.res.status;
    const fields: Record<string, unknown> = {
      method: c.req.method,
      path: c.req.path,
      status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      role: c.get('role') ?? null,
    };
    if (child.isLevelEnabled('debug')) fields.headers = Object.fromEntries(c.req.raw.headers);
    if (status >= 500) child.error(fields, 'request');
    else child.info(fields, 'request');
  };
}
