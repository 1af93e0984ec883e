/**
 * `GET /v1/whoami`: the role of the presented token, so a client (the run viewer) shows only the
 * actions that token may take. With authentication off every request may do everything.
 */
import { Hono } from 'hono';

/** The whoami route. */
export function whoamiRoutes(authenticationOn: boolean): Hono {
  const app = new Hono();
  app.get('/', (c) =>
    // The auth middleware checked the token and set its role before this handler ran.
    c.json({
      role: authenticationOn ? (c.get('role') ?? 'read') : 'admin',
      authentication: authenticationOn,
    }),
  );
  return app;
}
