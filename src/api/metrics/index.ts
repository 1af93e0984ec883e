/** `GET /metrics`: Prometheus text format, cheap whatever the number of runs kept (see README). */
import { Hono } from 'hono';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { ApiDeps } from '../context.ts';
import { snapshotRegistry } from './exposition.ts';
import { readSnapshot } from './snapshot.ts';

export { type MetricsSnapshot, readSnapshot } from './snapshot.ts';

/** The `/metrics` route. */
export function metricsRoutes(deps: ApiDeps): Hono {
  const processMetrics = new Registry();
  collectDefaultMetrics({ register: processMetrics });
  const app = new Hono();
  app.get('/', async (c) => {
    const scrape = snapshotRegistry(await readSnapshot(deps));
    const text = await Registry.merge([scrape, processMetrics]).metrics();
    return c.body(text, 200, { 'Content-Type': processMetrics.contentType });
  });
  return app;
}
