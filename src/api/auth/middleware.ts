/** The bearer-token middleware: 401 without a valid token, 403 when its role is too small. */
import type { MiddlewareHandler } from 'hono';
import { HttpError } from '../errors.ts';
import { ACCESS_RULES, type AccessRule, accessFor } from './access.ts';
import { type ApiToken, findRole, roleIncludes } from './tokens.ts';

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
): MiddlewareHandler {
  return async (c, next) => {
    if (tokens.length === 0) return next();
    const needed = accessFor(c.req.method, c.req.path, rules);
    if (needed === 'public' || needed === 'signature') return next();
    const header = c.req.header('authorization');
    if (!header) throw unauthorized('this route needs an API token: send "Authorization: Bearer <token>"');
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!match) throw unauthorized('the Authorization header must be "Bearer <token>"', 'invalid_request');
    const role = findRole(tokens, match[1]!);
    if (!role) throw unauthorized('the API token is not valid', 'invalid_token');
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
