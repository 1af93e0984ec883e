/** `/v1/workflows`: register, read, list and delete definitions; start runs of them. */
import { Hono } from 'hono';
import type { z } from 'zod';
import { NotFoundError, ValidationError } from '../errors.ts';
import { readBody, readDefinitionText } from './body.ts';
import type { ApiDeps } from './context.ts';
import { dryRunFlag, runPlan } from './dry-run.ts';
import { param } from './params.ts';
import { checkParam, positiveIntegerParam, runRequestSchema } from './request-schemas.ts';

/** Parses a body with a zod schema into a `ValidationError` with paths. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  throw new ValidationError(
    'request body is invalid',
    parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  );
}

/** The workflow routes. */
export function workflowRoutes(deps: ApiDeps): Hono {
  const app = new Hono();

  app.post('/', async (c) => {
    // Parsed, validated and stored by the submission thread: only the version comes back.
    const { text, format } = await readDefinitionText(c);
    const registration = await deps.launcher.submissions.register(text, format, await deps.inventory.load());
    const { name, version, created } = registration;
    // Also for an identical body: it repairs a registration whose process died before this.
    await deps.schedules.sync(name);
    return c.json({ name, version }, created ? 201 : 200);
  });

  app.get('/', async (c) => c.json({ workflows: await deps.workflows.list() }));

  app.get('/:name', async (c) => {
    const name = param(c, 'name', 'workflow');
    const raw = c.req.query('version');
    const version =
      raw === undefined ? undefined : Number(checkParam(positiveIntegerParam, 'version', raw, 'bad version'));
    const found = await deps.workflows.get(name, version);
    if (!found) throw new NotFoundError(`no workflow "${name}"${version ? ` version ${version}` : ''}`);
    return c.json({ name, version: found.version, createdAt: found.createdAt, definition: found.definition });
  });

  app.delete('/:name', async (c) => {
    const name = param(c, 'name', 'workflow');
    if (!(await deps.workflows.delete(name))) throw new NotFoundError(`no workflow "${name}"`);
    await deps.schedules.sync(name);
    return c.body(null, 204);
  });

  app.post('/:name/runs', async (c) => {
    const dryRun = dryRunFlag(c.req.queries('dryRun'));
    const name = param(c, 'name', 'workflow');
    const body = parseWith(runRequestSchema, await readBody(c, { optional: true }));
    const found = await deps.workflows.get(name);
    if (!found) throw new NotFoundError(`no workflow "${name}"`);
    if (dryRun) {
      const hosts = await deps.inventory.catalog();
      return c.json(runPlan(found.workflow, found.version, body.inputs, hosts, await deps.workers.list()));
    }
    const { run, created } = await deps.launcher.launch({
      workflow: found.workflow,
      version: found.version,
      inputs: body.inputs,
      idempotencyKey: body.idempotencyKey,
      trigger: { type: 'http' },
    });
    if (!created) c.header('Idempotent-Replayed', 'true');
    return c.json(run, 202);
  });

  return app;
}
