/** `/v1/hosts`: the SSH inventory, and the preflight check of one host. */
import { Hono } from 'hono';
import { NotFoundError, ValidationError } from '../errors.ts';
import { hostNameSchema } from '../inventory/index.ts';
import { checkHost, toHostTarget } from '../workers/ssh/index.ts';
import { readBody } from './body.ts';
import type { ApiDeps } from './context.ts';

function checkName(name: string): void {
  const parsed = hostNameSchema.safeParse(name);
  if (!parsed.success)
    throw new ValidationError('bad host name', [{ path: 'name', message: parsed.error.issues[0]!.message }]);
}

/** The host routes. */
export function hostRoutes(deps: ApiDeps): Hono {
  const app = new Hono();

  app.get('/', async (c) => {
    const { hosts } = await deps.inventory.load();
    return c.json({ hosts: Object.entries(hosts).map(([name, host]) => ({ name, ...host })) });
  });

  app.get('/:name', async (c) => {
    const host = await deps.inventory.get(c.req.param('name'));
    if (!host) throw new NotFoundError(`no host "${c.req.param('name')}"`);
    return c.json({ name: c.req.param('name'), ...host });
  });

  app.put('/:name', async (c) => {
    const name = c.req.param('name');
    checkName(name);
    const { host, created } = await deps.inventory.put(name, await readBody(c));
    return c.json({ name, ...host }, created ? 201 : 200);
  });

  app.delete('/:name', async (c) => {
    if (!(await deps.inventory.delete(c.req.param('name'))))
      throw new NotFoundError(`no host "${c.req.param('name')}"`);
    return c.body(null, 204);
  });

  app.post('/:name/check', async (c) => {
    const name = c.req.param('name');
    const inventory = await deps.inventory.load();
    if (!inventory.hosts[name]) throw new NotFoundError(`no host "${name}"`);
    const target = await toHostTarget(inventory, name, {
      secret: async (secret) => (await deps.secrets.get([secret]))[secret],
    });
    const report = await checkHost(target, {
      knownHosts: deps.knownHosts,
      onTrust: (host, keyLine) => deps.inventory.recordHostKey(host, keyLine),
    });
    return c.json(report);
  });

  return app;
}
