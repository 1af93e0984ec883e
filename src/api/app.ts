/** The Hono app: routes per resource, one error handler producing the contract's error shape. */
import { Hono } from 'hono';
import { type ApiToken, matchesPattern, requireTokens } from './auth/index.ts';
import type { ApiDeps } from './context.ts';
import { HttpError, toErrorResponse } from './errors.ts';
import { hostRoutes } from './hosts.ts';
import { openApiRoutes } from './openapi/index.ts';
import { runRoutes } from './runs.ts';
import { secretRoutes } from './secrets.ts';
import { workflowRoutes } from './workflows.ts';

/** Options of the app. */
export interface AppOptions {
  /** API tokens; none = no authentication (allowed only on a loopback bind). */
  tokens?: readonly ApiToken[];
}

/** Builds the API application. */
export function createApp(deps: ApiDeps, options: AppOptions = {}): Hono {
  const app = new Hono();
  const respond = (err: unknown) => {
    const { status, body, headers } = toErrorResponse(err);
    if (status >= 500) deps.logger.error({ err }, 'request failed');
    return Response.json(body, { status, headers });
  };

  app.use('*', requireTokens(options.tokens ?? []));
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
  app.route('/', openApiRoutes());
  app.route('/v1/workflows', workflowRoutes(deps));
  app.route('/v1/runs', runRoutes(deps));
  app.route('/v1/hosts', hostRoutes(deps));
  app.route('/v1/secrets', secretRoutes(deps));

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
