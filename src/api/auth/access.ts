/**
 * Which role each route needs, in one ordered table: the first matching rule wins. A new route
 * that needs less than `admin` (or no token, like webhooks that authenticate by signature) gets
 * a line here; everything unlisted needs `admin`, so forgetting a line fails closed.
 */
import { matchesPattern } from './route-match.ts';
import type { Role } from './tokens.ts';

/**
 * What a route requires: a role, nothing (`public`), or its own proof such as a webhook
 * signature checked by the route itself (`signature`: no token is asked for).
 */
export type Access = Role | 'public' | 'signature';

/** One line of the access table; `method` `*` matches any method. */
export interface AccessRule {
  method: string;
  path: string;
  access: Access;
}

/** The API's access table (docs/reference.md §7.1). */
export const ACCESS_RULES: readonly AccessRule[] = [
  { method: 'GET', path: '/healthz', access: 'public' },
  { method: 'GET', path: '/readyz', access: 'public' },
  // The API's shape is no secret (the code is open) and generators fetch it without a token.
  { method: 'GET', path: '/openapi.json', access: 'public' },
  { method: 'GET', path: '/docs', access: 'public' },
  { method: 'GET', path: '/docs/*', access: 'public' },
  // The run viewer's page and files hold no data: the API calls it makes carry a token.
  { method: 'GET', path: '/ui', access: 'public' },
  { method: 'GET', path: '/ui/*', access: 'public' },
  { method: '*', path: '/v1/hooks/*', access: 'signature' },
  // The dashboard's login form checks the admin token it is given itself.
  { method: '*', path: '/admin/login', access: 'signature' },
  // Dashboards can change queues (retry, remove jobs): admin even to look.
  { method: '*', path: '/admin/*', access: 'admin' },
  { method: 'GET', path: '/*', access: 'read' },
  { method: 'POST', path: '/v1/runs', access: 'run' },
  { method: 'POST', path: '/v1/workflows/:name/runs', access: 'run' },
  { method: 'POST', path: '/v1/runs/:id/cancel', access: 'run' },
  { method: 'POST', path: '/v1/runs/:id/retry', access: 'run' },
  { method: 'POST', path: '/v1/events/:type', access: 'run' },
  { method: '*', path: '/*', access: 'admin' },
];

/** The access a request needs under `rules`; HEAD is treated as GET. */
export function accessFor(method: string, path: string, rules: readonly AccessRule[] = ACCESS_RULES): Access {
  const m = method === 'HEAD' ? 'GET' : method;
  for (const rule of rules) {
    if ((rule.method === '*' || rule.method === m) && matchesPattern(rule.path, path)) return rule.access;
  }
  return 'admin';
}
