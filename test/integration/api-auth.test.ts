import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTokens } from '../../src/api/auth/index.ts';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { delivery } from '../support/webhooks.ts';

const prefix = testPrefix(import.meta.url);
let api: ConveyorApi;

const TOKENS = {
  read: 'read-token-0123456789',
  run: 'run-token-0123456789',
  admin: 'admin-token-0123456789',
};

beforeAll(async () => {
  api = await startApi({
    redisUrl: redisUrl(),
    prefix,
    logger: pino({ level: 'silent' }),
    tokens: parseTokens(`read:${TOKENS.read},run:${TOKENS.run}\n${TOKENS.admin}`, 'CONVEYOR_API_TOKENS'),
    webhookSecrets: ['hook-secret'],
  });
});
afterAll(async () => {
  await api.close();
  await dropPrefix(redisUrl(), prefix);
});

type Role = 'read' | 'run' | 'admin';
const RANK: Record<Role, number> = { read: 0, run: 1, admin: 2 };

/** One request per route group; bodies are deliberately incomplete so nothing runs. */
const ROUTES: Array<{ method: string; path: string; needs: Role; body?: unknown }> = [
  { method: 'GET', path: '/v1/workflows', needs: 'read' },
  { method: 'GET', path: '/v1/workflows/nope', needs: 'read' },
  { method: 'GET', path: '/v1/runs', needs: 'read' },
  { method: 'GET', path: '/v1/runs/run_nope', needs: 'read' },
  { method: 'GET', path: '/v1/runs/run_nope/events', needs: 'read' },
  { method: 'GET', path: '/v1/runs/run_nope/steps/a/logs', needs: 'read' },
  { method: 'GET', path: '/v1/hosts', needs: 'read' },
  { method: 'GET', path: '/v1/hosts/web-1', needs: 'read' },
  { method: 'GET', path: '/v1/secrets', needs: 'read' },
  { method: 'GET', path: '/metrics', needs: 'read' },
  { method: 'POST', path: '/v1/runs', needs: 'run', body: {} },
  { method: 'POST', path: '/v1/workflows/nope/runs', needs: 'run', body: {} },
  { method: 'POST', path: '/v1/runs/run_nope/cancel', needs: 'run' },
  { method: 'POST', path: '/v1/runs/run_nope/retry', needs: 'run' },
  { method: 'POST', path: '/v1/workflows', needs: 'admin', body: {} },
  { method: 'DELETE', path: '/v1/workflows/nope', needs: 'admin' },
  { method: 'PUT', path: '/v1/hosts/web-1', needs: 'admin', body: {} },
  { method: 'DELETE', path: '/v1/hosts/web-1', needs: 'admin' },
  { method: 'POST', path: '/v1/hosts/web-1/check', needs: 'admin' },
  { method: 'PUT', path: '/v1/secrets/KEY', needs: 'admin', body: {} },
  { method: 'DELETE', path: '/v1/secrets/KEY', needs: 'admin' },
];

async function call(method: string, path: string, authorization?: string, body?: unknown) {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.authorization = authorization;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await api.app.request(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = res.headers.get('content-type')?.includes('json');
  return {
    status: res.status,
    headers: res.headers,
    body: text && json ? JSON.parse(text) : text || undefined,
  };
}

describe('access control', () => {
  it.each(ROUTES)(
    '$method $path: 401 without a valid token, 403 below "$needs", through at or above',
    async (route) => {
      for (const authorization of [
        undefined,
        'Bearer wrong-token-0123456789ab', // same length as a real one
        'Bearer x', // another length
        `Bearer ${TOKENS.admin}x`,
        `Basic ${Buffer.from(`u:${TOKENS.admin}`).toString('base64')}`,
      ]) {
        const res = await call(route.method, route.path, authorization, route.body);
        expect(res.status, String(authorization)).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
        expect(res.body.error.code).toBe('unauthorized');
        expect(typeof res.body.error.message).toBe('string');
      }
      for (const role of ['read', 'run', 'admin'] as const) {
        const res = await call(route.method, route.path, `Bearer ${TOKENS[role]}`, route.body);
        if (RANK[role] < RANK[route.needs]) {
          expect(res.status, role).toBe(403);
          expect(res.body.error).toMatchObject({ code: 'forbidden' });
          expect(res.body.error.message).toContain(`"${route.needs}"`);
        } else {
          // The route's own answer (400 for the empty bodies, 404 for unknown names…), never auth.
          expect([401, 403, 500], `${role}: ${JSON.stringify(res.body)}`).not.toContain(res.status);
        }
      }
    },
  );

  it('keeps /healthz and /readyz open, and accepts the scheme in any case', async () => {
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/readyz')).status).toBe(200);
    expect((await call('GET', '/v1/workflows', `bearer ${TOKENS.read}`)).status).toBe(200);
  });

  it('asks for a token before saying whether a route exists', async () => {
    expect((await call('GET', '/v1/nowhere')).status).toBe(401);
    expect((await call('GET', '/v1/nowhere', `Bearer ${TOKENS.read}`)).status).toBe(404);
  });
});

describe('webhooks with tokens on', () => {
  it('need no token: a signed delivery passes, an unsigned one is refused by its signature check', async () => {
    const ping = delivery('github', { zen: 'hi', hook_id: 1 }, { secret: 'hook-secret', event: 'ping' });
    const signed = await api.app.request('/v1/hooks/github', { method: 'POST', ...ping });
    expect(signed.status).toBe(200);
    const unsigned = await api.app.request('/v1/hooks/github', {
      method: 'POST',
      body: ping.body,
      headers: { 'content-type': 'application/json', 'x-github-event': 'ping' },
    });
    expect(unsigned.status).toBe(401);
    expect(unsigned.headers.get('www-authenticate')).toBeNull();
  });
});
