/** `GET /v1/workers`: the live workers, from their heartbeats (`read` role, as every GET). */
import { Hono } from 'hono';
import type { ApiDeps } from './context.ts';

/** The worker routes. */
export function workerRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.get('/', async (c) => {
    const workers = await deps.workers.list();
    return c.json({
      workers: workers.map((w) => ({
        id: w.id,
        host: w.host,
        pid: w.pid,
        executors: w.executors,
        tags: w.tags,
        tagsOnly: w.tagsOnly,
        slots: { total: w.concurrency, busy: w.busy, free: Math.max(0, w.concurrency - w.busy) },
        started: w.started,
        version: w.version,
        startedAt: w.startedAt,
        lastSeen: w.lastSeen,
      })),
    });
  });
  return app;
}
