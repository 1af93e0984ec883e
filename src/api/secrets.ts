/** `/v1/secrets`: write-only secret values (the list shows names only). */
import { Hono } from 'hono';
import { NotFoundError, ValidationError } from '../errors.ts';
import { secretNameSchema } from '../inventory/index.ts';
import { readBody } from './body.ts';
import type { ApiDeps } from './context.ts';
import { param } from './params.ts';
import { putSecretSchema } from './request-schemas.ts';
import { parseWith } from './workflows.ts';

/** The secret routes. */
export function secretRoutes(deps: ApiDeps): Hono {
  const app = new Hono();

  app.get('/', async (c) => c.json({ secrets: (await deps.secrets.names()).map((name) => ({ name })) }));

  app.put('/:name', async (c) => {
    const name = c.req.param('name');
    const parsed = secretNameSchema.safeParse(name);
    if (!parsed.success)
      throw new ValidationError('bad secret name', [
        { path: 'name', message: parsed.error.issues[0]!.message },
      ]);
    const { value } = parseWith(putSecretSchema, await readBody(c));
    const created = await deps.secrets.put(name, value);
    return c.json({ name }, created ? 201 : 200);
  });

  app.delete('/:name', async (c) => {
    const name = param(c, 'name', 'secret');
    if (!(await deps.secrets.delete(name))) throw new NotFoundError(`no secret "${name}"`);
    return c.body(null, 204);
  });

  return app;
}
