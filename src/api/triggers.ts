/** `GET /v1/triggers`: every active trigger of every registered workflow, with what it matches. */
import { Hono } from 'hono';
import { listTriggers } from '../triggers/index.ts';
import type { ApiDeps } from './context.ts';

/** The trigger routes. */
export function triggerRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.get('/', async (c) => c.json({ triggers: await listTriggers(deps.workflows, deps.schedules) }));
  return app;
}
