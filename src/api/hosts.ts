/** `/v1/hosts`: the SSH inventory, and the preflight check of one host. */
import { Hono } from 'hono';
import { ConveyorError, type Issue, NotFoundError, ValidationError } from '../errors.ts';
import { type HostEntry, hostNameSchema } from '../inventory/index.ts';
import { checkHost, type HostCheck, toHostTarget } from '../workers/ssh/index.ts';
import { readBody } from './body.ts';
import type { ApiDeps } from './context.ts';
import { own, param } from './params.ts';

function checkNewName(name: string): void {
  const parsed = hostNameSchema.safeParse(name);
  if (!parsed.success)
    throw new ValidationError('bad host name', [{ path: 'name', message: parsed.error.issues[0]!.message }]);
}

/** The secrets a host's auth names that are not stored (yet): worth a warning, not a refusal. */
async function missingSecrets(host: HostEntry, deps: ApiDeps): Promise<Issue[]> {
  const named = (['secret', 'passphraseSecret'] as const)
    .filter((field) => host.auth[field] !== undefined)
    .map((field) => ({ path: `auth.${field}`, secret: host.auth[field]! }));
  if (named.length === 0) return [];
  const stored = new Set(await deps.secrets.names());
  return named
    .filter(({ secret }) => !stored.has(secret))
    .map(({ path, secret }) => ({
      path,
      message: `secret "${secret}" does not exist: steps and checks on this host fail until it is stored (PUT /v1/secrets/${secret})`,
    }));
}

/** A preflight report for a host whose connection could not even be prepared. */
function notAttempted(host: string, err: ConveyorError): HostCheck {
  return {
    host,
    reachable: false,
    hostKey: null,
    auth: null,
    sudo: null,
    latencyMs: null,
    commandMs: null,
    errors: [{ code: err.code, message: err.message }],
  };
}

/** The host routes. */
export function hostRoutes(deps: ApiDeps): Hono {
  const app = new Hono();

  app.get('/', async (c) => {
    const { hosts } = await deps.inventory.load();
    return c.json({ hosts: Object.entries(hosts).map(([name, host]) => ({ name, ...host })) });
  });

  app.get('/:name', async (c) => {
    const name = param(c, 'name', 'host');
    const host = await deps.inventory.get(name);
    if (!host) throw new NotFoundError(`no host "${name}"`);
    return c.json({ name, ...host });
  });

  app.put('/:name', async (c) => {
    const name = c.req.param('name');
    checkNewName(name);
    const { host, created } = await deps.inventory.put(name, await readBody(c));
    return c.json({ name, ...host, warnings: await missingSecrets(host, deps) }, created ? 201 : 200);
  });

  app.delete('/:name', async (c) => {
    const name = param(c, 'name', 'host');
    if (!(await deps.inventory.delete(name))) throw new NotFoundError(`no host "${name}"`);
    return c.body(null, 204);
  });

  app.post('/:name/check', async (c) => {
    const name = param(c, 'name', 'host');
    const inventory = await deps.inventory.load();
    if (!own(inventory.hosts, name)) throw new NotFoundError(`no host "${name}"`);
    // A preflight reports what fails (a missing secret included); only Redis being down is an error.
    try {
      const target = await toHostTarget(inventory, name, {
        secret: async (secret) => own(await deps.secrets.get([secret]), secret),
      });
      return c.json(
        await checkHost(target, {
          knownHosts: deps.knownHosts,
          onTrust: (host, keyLine) => deps.inventory.recordHostKey(host, keyLine),
        }),
      );
    } catch (err) {
      if (err instanceof ConveyorError) return c.json(notAttempted(name, err));
      throw err;
    }
  });

  return app;
}
