/**
 * `POST /v1/hooks/{github,gitlab,gitea}`: git push webhooks. The raw bytes are verified first
 * (the default secrets, then the repository's stored ones); only a verified body is parsed.
 * A refusal is a 401 that logs and keeps nothing of the body.
 */
import type { Context } from 'hono';
import { Hono } from 'hono';
import { SecretsDisabledError } from '../store/index.ts';
import {
  claimedRepository,
  type HeaderLookup,
  type Provider,
  parseSecretList,
  readDelivery,
  repositorySecretName,
  SIGNATURE_HEADER,
  verifySignature,
} from '../triggers/index.ts';
import type { ApiDeps } from './context.ts';
import { HttpError } from './errors.ts';

// These routes authenticate by webhook signature, not by API token: `/v1/hooks/*` is
// `signature` in the access table (auth/access.ts), and an unsigned delivery is refused here.

/** Largest delivery accepted (GitHub caps its payloads at 25 MB; pushes are far smaller). */
export const MAX_HOOK_BYTES = 5 * 1024 * 1024;

const PROVIDERS: ReadonlySet<string> = new Set<Provider>(['github', 'gitlab', 'gitea']);

async function rawBody(c: Context): Promise<Uint8Array> {
  const tooLarge = () => new HttpError(413, 'too_large', `webhook body is over ${MAX_HOOK_BYTES} bytes`);
  if (Number(c.req.header('content-length') ?? 0) > MAX_HOOK_BYTES) throw tooLarge();
  const body = new Uint8Array(await c.req.arrayBuffer());
  if (body.byteLength > MAX_HOOK_BYTES) throw tooLarge();
  return body;
}

/** The repository's stored secrets (`WEBHOOK_<REPO>`), none when secrets are not enabled. */
async function repositorySecrets(deps: ApiDeps, repository: string | undefined): Promise<string[]> {
  const name = repository && repositorySecretName(repository);
  if (!name) return [];
  try {
    return parseSecretList((await deps.secrets.get([name]))[name]);
  } catch (err) {
    if (err instanceof SecretsDisabledError) return [];
    throw err;
  }
}

/** The webhook routes. */
export function hookRoutes(deps: ApiDeps): Hono {
  const app = new Hono();

  app.post('/:provider', async (c) => {
    const provider = c.req.param('provider');
    if (!PROVIDERS.has(provider)) {
      throw new HttpError(404, 'not_found', `no webhook for "${provider}": use github, gitlab or gitea`);
    }
    const p = provider as Provider;
    const body = await rawBody(c);
    const header: HeaderLookup = (name) => c.req.header(name);
    const verified =
      verifySignature(p, header, body, deps.webhookSecrets) ||
      verifySignature(p, header, body, await repositorySecrets(deps, claimedRepository(p, body)));
    if (!verified) {
      throw new HttpError(
        401,
        'unauthorized',
        `webhook signature missing or invalid: ${SIGNATURE_HEADER[p]} must be made with CONVEYOR_WEBHOOK_SECRET or the repository's stored secret`,
      );
    }
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      throw new HttpError(
        415,
        'unsupported_media_type',
        `webhook content type "${type}" is not accepted: set the webhook's content type to application/json`,
      );
    }
    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(body).toString('utf8'));
    } catch {
      throw new HttpError(400, 'invalid_input', 'webhook body is not JSON');
    }
    const delivery = readDelivery(p, header, payload);
    if (delivery.kind === 'ping') return c.json({ event: 'ping', deliveryId: delivery.deliveryId, ok: true });
    if (delivery.kind === 'other') {
      return c.json(
        {
          event: delivery.event,
          deliveryId: delivery.deliveryId,
          runs: [],
          message: 'only push events start runs',
        },
        202,
      );
    }
    const { result, replayed } = await deps.triggers.push(delivery.trigger);
    if (replayed) c.header('Idempotent-Replayed', 'true');
    return c.json(result, 202);
  });

  return app;
}
