/** The Hono app: routes per resource, one error handler producing the API's error shape (docs/reference.md §7.2). */
import { Hono } from 'hono';
import { AdminSessions, RateLimitStore } from '../store/index.ts';
import { BOARD_PATH, boardRoutes } from './admin/board.ts';
import { loginRoutes, sessionRole } from './admin/login.ts';
import { ACCESS_RULES, type ApiToken, matchesPattern, requireTokens } from './auth/index.ts';
import type { ApiDeps } from './context.ts';
import { HttpError, toErrorResponse } from './errors.ts';
import { eventRoutes } from './events.ts';
import { hookRoutes } from './hooks.ts';
import { hostRoutes } from './hosts.ts';
import { metricsRoutes } from './metrics/index.ts';
import {
  type CorsOrigins,
  cors,
  type RateLimitOptions,
  rateLimit,
  requestId,
  requestLog,
  requestLogger,
} from './middleware/index.ts';
import { openApiRoutes } from './openapi/index.ts';
import { runRoutes } from './runs.ts';
import { secretRoutes } from './secrets.ts';
import { triggerRoutes } from './triggers.ts';
import { uiRoutes } from './ui/index.ts';
import { whoamiRoutes } from './whoami.ts';
import { workerRoutes } from './workers.ts';
import { workflowRoutes } from './workflows.ts';

/** Options of the app. */
export interface AppOptions {
  /** API tokens; none = no authentication (allowed only on a loopback bind). */
  tokens?: readonly ApiToken[];
  /** `CONVEYOR_CORS_ORIGINS`; omitted = no CORS headers (browsers refuse cross-origin calls). */
  corsOrigins?: CorsOrigins;
  /** `CONVEYOR_RATE_LIMIT` per token (or client address); omitted = no limit. */
  rateLimit?: RateLimitOptions;
}

/** Builds the API application. */
export function createApp(deps: ApiDeps, options: AppOptions = {}): Hono {
  const app = new Hono();
  const respond = (err: unknown) => {
    const { status, body, headers } = toErrorResponse(err);
    if (status >= 500) requestLogger(deps.logger).error({ err }, 'request failed');
    return Response.json(body, { status, headers });
  };

  app.use('*', requestId());
  app.use('*', requestLog(deps.logger));
  // Before the token check: a browser's preflight carries no token.
  if (options.corsOrigins) app.use('*', cors(options.corsOrigins));
  const tokens = options.tokens ?? [];
  const sessions = new AdminSessions(deps.redis, deps.store.keys);
  app.use('*', requireTokens(tokens, ACCESS_RULES, { adminSession: (c) => sessionRole(c, sessions) }));
  if (options.rateLimit) {
    const buckets = new RateLimitStore(deps.redis, deps.store.keys);
    app.use('*', rateLimit(buckets, options.rateLimit));
  }
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await deps.redis.ping();
      return c.json({ status: 'ready' });
    } catch {
      return c.json(
        { status: 'unavailable', error: { code: 'unavailable', message: 'Redis is unreachable' } },
        503,
      );
    }
  });
  app.route('/metrics', metricsRoutes(deps));
  app.route('/admin', loginRoutes(tokens, sessions));
  app.route(BOARD_PATH, boardRoutes(deps.queues));
  app.route('/', openApiRoutes());
  app.route('/v1/workflows', workflowRoutes(deps));
  app.route('/v1/runs', runRoutes(deps));
  app.route('/v1/hosts', hostRoutes(deps));
  app.route('/v1/secrets', secretRoutes(deps));
  app.route('/v1/hooks', hookRoutes(deps));
  app.route('/v1/events', eventRoutes(deps));
  app.route('/v1/triggers', triggerRoutes(deps));
  app.route('/v1/workers', workerRoutes(deps));
  app.route('/v1/whoami', whoamiRoutes(tokens.length > 0));
  app.route('/ui', uiRoutes());

  app.notFound((c) => {
    // A known path with another method is 405 with the methods it has, as HTTP asks.
    const allowed = new Set<string>();
    for (const route of app.routes) {
      if (route.method !== 'ALL' && matchesPattern(route.path, c.req.path)) allowed.add(route.method);
    }
    if (allowed.has('GET')) allowed.add('HEAD');
    const err =
      allowed.size > 0
        ? new HttpError(405, 'method_not_allowed', `${c.req.method} is not allowed on ${c.req.path}`, {
            Allow: [...allowed].sort().join(', '),
          })
        : new HttpError(404, 'not_found', `no route ${c.req.method} ${c.req.path}`);
    return respond(err);
  });
  app.onError((err) => respond(err));
  return app;
}
