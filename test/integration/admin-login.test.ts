/**
 * Dashboard login and its cookie, in-process: every refusal in the API's error shape, a
 * session that opens `/admin/*` only (never the JSON API), logout, and the dashboard's own API
 * listing every Conveyor queue.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/api/admin/login.ts';
import { parseTokens } from '../../src/api/auth/index.ts';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { queueNames } from '../../src/flows/index.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

const prefix = testPrefix(import.meta.url);
const ADMIN = 'admin-token-0123456789';
const READ = 'read-token-0123456789';
let api: ConveyorApi;

beforeAll(async () => {
  api = await startApi({
    redisUrl: redisUrl(),
    prefix,
    logger: pino({ level: 'silent' }),
    tokens: parseTokens(`read:${READ},admin:${ADMIN}`, 'CONVEYOR_API_TOKENS'),
  });
});
afterAll(async () => {
  await api.close();
  await dropPrefix(redisUrl(), prefix);
});

function login(body: string, type = 'application/x-www-form-urlencoded') {
  return api.app.request('/admin/login', { method: 'POST', headers: { 'content-type': type }, body });
}

async function errorOf(res: Response) {
  expect(res.headers.get('content-type')).toMatch(/json/);
  return ((await res.json()) as { error: { code: string; issues?: Array<{ path: string }> } }).error;
}

/** Logs in with the admin token and returns the `name=value` cookie pair. */
async function session(): Promise<string> {
  const res = await login(`token=${ADMIN}`);
  expect(res.status).toBe(303);
  expect(res.headers.get('location')).toBe('/admin/queues');
  const cookie = res.headers.get('set-cookie')!;
  expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43};`));
  expect(cookie).toContain('Path=/admin');
  expect(cookie).toContain('HttpOnly');
  expect(cookie).toContain('SameSite=Strict');
  expect(cookie).not.toContain(ADMIN);
  return cookie.split(';')[0]!;
}

describe('dashboard login', () => {
  it('serves the form without a token, and refuses bad logins with the error shape', async () => {
    const form = await api.app.request('/admin/login');
    expect(form.status).toBe(200);
    expect(await form.text()).toContain('<form method="post" action="/admin/login">');

    const missing = await login('');
    expect(missing.status).toBe(400);
    expect((await errorOf(missing)).issues?.[0]?.path).toBe('token');
    expect((await errorOf(await login('{"token": 5}', 'application/json'))).code).toBe('invalid_input');
    expect((await errorOf(await login('token=nope'))).code).toBe('unauthorized');
    const read = await login(`token=${READ}`);
    expect(read.status).toBe(403);
    expect((await errorOf(read)).code).toBe('forbidden');
    const text = await login(ADMIN, 'text/plain');
    expect(text.status).toBe(415);
    expect((await errorOf(text)).issues?.[0]?.path).toBe('content-type');
    expect((await login(JSON.stringify({ token: ADMIN }), 'application/json')).status).toBe(303);
  });

  it('sends a browser without a session to the form, and an API client a 401', async () => {
    const browser = await api.app.request('/admin/queues', { headers: { accept: 'text/html' } });
    expect(browser.status).toBe(303);
    expect(browser.headers.get('location')).toBe('/admin/login');
    const client = await api.app.request('/admin/queues/api/queues');
    expect(client.status).toBe(401);
    const forged = await api.app.request('/admin/queues/api/queues', {
      headers: { cookie: `${SESSION_COOKIE}=${'A'.repeat(43)}` },
    });
    expect(forged.status).toBe(401);
  });

  it('opens /admin/* with the cookie, never the JSON API, and logs out', async () => {
    const cookie = await session();
    const page = await api.app.request('/admin/queues', { headers: { cookie, accept: 'text/html' } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<base href="/admin/queues/" />');
    // Every script and stylesheet the page names loads under the base path, with the cookie.
    const assets = [...html.matchAll(/(?:src|href)="(static\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(1);
    for (const asset of assets) {
      const res = await api.app.request(`/admin/queues/${asset}`, { headers: { cookie } });
      expect(res.status, asset).toBe(200);
      expect((await res.arrayBuffer()).byteLength, asset).toBeGreaterThan(0);
    }

    const board = await api.app.request('/admin/queues/api/queues', { headers: { cookie } });
    expect(board.status).toBe(200);
    const names = ((await board.json()) as { queues: Array<{ name: string }> }).queues.map((q) => q.name);
    expect(names.sort()).toEqual(queueNames().sort());

    for (const path of ['/v1/runs', '/metrics', '/v1/secrets']) {
      expect((await api.app.request(path, { headers: { cookie } })).status).toBe(401);
    }

    const out = await api.app.request('/admin/logout', { headers: { cookie } });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(new RegExp(`^${SESSION_COOKIE}=;.*Max-Age=0`));
    expect((await api.app.request('/admin/queues/api/queues', { headers: { cookie } })).status).toBe(401);
  });

  it('still accepts a bearer token on /admin/* and refuses a smaller role', async () => {
    const ok = await api.app.request('/admin/queues/api/queues', {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(ok.status).toBe(200);
    const small = await api.app.request('/admin/queues/api/queues', {
      headers: { authorization: `Bearer ${READ}` },
    });
    expect(small.status).toBe(403);
  });
});
