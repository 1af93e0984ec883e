/** The Hono app: routes per resource, one error handler producing the contract's error shape. */
import { Hono } from 'hono';
import type { ApiDeps } from './context.ts';
import { HttpError, toErrorResponse } from './errors.ts';
import { hostRoutes } from './hosts.ts';
import { runRoutes } from './runs.ts';
import { secretRoutes } from './secrets.ts';
import { triggerRoutes } from './triggers.ts';
import { workflowRoutes } from './workflows.ts';

/** Builds the API application. */
export function createApp(deps: ApiDeps): Hono {
  const app = new Hono();

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
  app.route('/v1/workflows', workflowRoutes(deps));
  app.route('/v1/runs', runRoutes(deps));
  app.route('/v1/hosts', hostRoutes(deps));
  app.route('/v1/secrets', secretRoutes(deps));
  app.route('/v1/triggers', triggerRoutes(deps));

  app.notFound((c) => {
    const { status, body } = toErrorResponse(
      new HttpError(404, 'not_found', `no route ${c.req.method} ${c.req.path}`),
    );
    return c.json(body, status);
  });
  app.onError((err, c) => {
    const { status, body } = toErrorResponse(err);
    if (status >= 500) deps.logger.error({ err }, 'request failed');
    return c.json(body, status);
  });
  return app;
}
