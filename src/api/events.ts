/** `/v1/events`: publish an event to the workflows subscribed to it; list recent events. */
import { Hono } from 'hono';
import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { eventTypeProblem } from '../flows/index.ts';
import { readBody } from './body.ts';
import type { ApiDeps } from './context.ts';
import { parseWith } from './workflows.ts';

const publishSchema = z.strictObject({
  payload: z.unknown().optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
});

/** The event routes. */
export function eventRoutes(deps: ApiDeps): Hono {
  const app = new Hono();

  app.post('/:type', async (c) => {
    const type = c.req.param('type');
    const problem = eventTypeProblem(type);
    if (problem) throw new ValidationError('bad event type', [{ path: 'type', message: problem }]);
    const body = parseWith(publishSchema, await readBody(c, { optional: true }));
    const { record, replayed } = await deps.eventTriggers.publish({
      type,
      payload: body.payload ?? null,
      source: { type: 'http' },
      depth: 1,
      scope: body.idempotencyKey === undefined ? undefined : `event:${type}:${body.idempotencyKey}`,
    });
    if (replayed) c.header('Idempotent-Replayed', 'true');
    return c.json(record, 202);
  });

  app.get('/', async (c) => {
    const raw = c.req.query('limit');
    const limit = raw === undefined ? 50 : Number(raw);
    if (raw !== undefined && !(/^\d+$/.test(raw) && limit >= 1)) {
      throw new ValidationError('bad query', [{ path: 'limit', message: 'must be a positive integer' }]);
    }
    return c.json(await deps.eventTriggers.recent(Math.min(limit, 1000)));
  });

  return app;
}
