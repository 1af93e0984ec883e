/**
 * Dashboard login: `GET /admin/login` is a small form; `POST /admin/login` with an admin token
 * (form field or JSON `token`) starts a session and sets it as an HttpOnly, SameSite=Strict
 * cookie scoped to `/admin`, then redirects to the dashboard. The cookie is accepted for
 * `/admin/*` only (auth/middleware.ts), never for the JSON API, so no other route can be
 * driven by a cross-site request riding on it.
 */
import type { Context } from 'hono';
import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { AdminSessions } from '../../store/index.ts';
import { type ApiToken, findRole, type Role, roleIncludes } from '../auth/index.ts';
import { readText } from '../body.ts';
import { HttpError } from '../errors.ts';

/** Name of the session cookie. */
export const SESSION_COOKIE = 'conveyor_admin';

const FORM = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conveyor dashboard: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}
input,button{font:inherit;padding:.4rem;width:100%;box-sizing:border-box;margin:.3rem 0}</style></head>
<body><h1>Conveyor</h1><p>Log in to the queue dashboard with an <code>admin</code> API token.</p>
<form method="post" action="/admin/login"><label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button></form></body></html>`;

async function presentedToken(c: Context): Promise<string> {
  const text = await readText(c);
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  let token: unknown;
  if (type === 'application/x-www-form-urlencoded') token = new URLSearchParams(text).get('token');
  else if (type === 'application/json') {
    try {
      token = (JSON.parse(text) as { token?: unknown } | null)?.token;
    } catch {
      token = undefined;
    }
  } else {
    const message = `content type "${type}" is not accepted here: send a form or application/json`;
    throw new HttpError(415, 'unsupported_media_type', message, {}, [{ path: 'content-type', message }]);
  }
  if (typeof token !== 'string' || token === '') {
    throw new HttpError(400, 'invalid_input', 'send the API token in the field "token"', {}, [
      { path: 'token', message: 'required: an admin API token' },
    ]);
  }
  return token;
}

/** `/admin/login` and `/admin/logout`. With no tokens configured both lead to the dashboard. */
export function loginRoutes(tokens: readonly ApiToken[], sessions: AdminSessions): Hono {
  const app = new Hono();
  app.get('/login', (c) => (tokens.length === 0 ? c.redirect('/admin/queues', 303) : c.html(FORM)));
  app.post('/login', async (c) => {
    if (tokens.length === 0) return c.redirect('/admin/queues', 303);
    const role = findRole(tokens, await presentedToken(c));
    if (!role) throw new HttpError(401, 'unauthorized', 'the API token is not valid');
    if (!roleIncludes(role, 'admin')) {
      throw new HttpError(403, 'forbidden', `the dashboard needs the "admin" role; the token has "${role}"`);
    }
    setCookie(c, SESSION_COOKIE, await sessions.create(role), {
      path: '/admin',
      httpOnly: true,
      sameSite: 'Strict',
      secure: new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https',
      maxAge: Math.floor(sessions.ttlMs / 1000),
    });
    return c.redirect('/admin/queues', 303);
  });
  app.get('/logout', async (c) => {
    const id = getCookie(c, SESSION_COOKIE);
    if (id) await sessions.remove(id);
    deleteCookie(c, SESSION_COOKIE, { path: '/admin' });
    return c.redirect('/admin/login', 303);
  });
  return app;
}

/** The role of the request's dashboard session cookie, if it has a live one. */
export async function sessionRole(c: Context, sessions: AdminSessions): Promise<Role | undefined> {
  const id = getCookie(c, SESSION_COOKIE);
  return id ? ((await sessions.role(id)) as Role | undefined) : undefined;
}
