/** The bearer-token middleware: 401 without a valid token, 403 when its role is too small. */
import type { Context, MiddlewareHandler } from 'hono';
import { HttpError } from '../errors.ts';
import { ACCESS_RULES, type AccessRule, accessFor } from './access.ts';
import { matchesPattern } from './route-match.ts';
import { type ApiToken, findRole, type Role, roleIncludes } from './tokens.ts';

/** Options of the middleware. */
export interface RequireTokensOptions {
  /**
   * The role of the request's dashboard session cookie. Asked only for `/admin/*` requests
   * without an Authorization header: the JSON API never accepts a cookie, so no cross-site
   * request can use one there.
   */
  adminSession?: (c: Context) => Promise<Role | undefined>;
}

const CHALLENGE = 'Bearer realm="conveyor"';

function unauthorized(message: string, error?: string): HttpError {
  return new HttpError(401, 'unauthorized', message, {
    'WWW-Authenticate': error ? `${CHALLENGE}, error="${error}"` : CHALLENGE,
  });
}

/**
 * Checks `Authorization: Bearer <token>` against `tokens` per the access table. With no tokens
 * configured every request passes (the server refuses that on a non-loopback bind).
 */
export function requireTokens(
  tokens: readonly ApiToken[],
  rules: readonly AccessRule[] = ACCESS_RULES,
  options: RequireTokensOptions = {},
): MiddlewareHandler {
  return async (c, next) => {
    if (tokens.length === 0) return next();
    const needed = accessFor(c.req.method, c.req.path, rules);
    if (needed === 'public' || needed === 'signature') return next();
    const header = c.req.header('authorization');
    let role: Role | undefined;
    if (!header && options.adminSession && matchesPattern('/admin/*', c.req.path)) {
      role = await options.adminSession(c);
      // A browser without a session is sent to the login form rather than shown a JSON 401.
      if (!role && c.req.method === 'GET' && c.req.header('accept')?.includes('text/html')) {
        return c.redirect('/admin/login', 303);
      }
    }
    if (!role) {
      if (!header) throw unauthorized('this route needs an API token: send "Authorization: Bearer <token>"');
      const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
      if (!match) throw unauthorized('the Authorization header must be "Bearer <token>"', 'invalid_request');
      role = findRole(tokens, match[1]!);
      if (!role) throw unauthorized('the API token is not valid', 'invalid_token');
    }
    if (!roleIncludes(role, needed)) {
      throw new HttpError(
        403,
        'forbidden',
        `this route needs the "${needed}" role; the token has "${role}"`,
        {
          'WWW-Authenticate': `${CHALLENGE}, error="insufficient_scope"`,
        },
      );
    }
    c.set('role', role); // for the request log line and the rate limit: this token was checked
    return next();
  };
}
