/**
 * `GET /openapi.json` and the Scalar reference at `GET /docs`. The page's script is Scalar's
 * standalone bundle from the `@scalar/api-reference` package, served by this API: no CDN, so the
 * reference works on machines without internet access.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Hono } from 'hono';
import { conveyorVersion } from '../../version.ts';
import { buildDocument } from './document.ts';
import { OPERATIONS, TAGS } from './operations.ts';

const require = createRequire(import.meta.url);

let cached: { version: string; script?: string } | undefined;
function assets(): { version: string; script?: string } {
  cached ??= {
    version: conveyorVersion(),
  };
  return cached;
}

function scalarScript(): string {
  const state = assets();
  state.script ??= readFileSync(require.resolve('@scalar/api-reference/browser/standalone.js'), 'utf8');
  return state.script;
}

/** The document as this API serves it, with `servers` set to `origin`. */
export function openApiDocument(origin?: string): Record<string, unknown> {
  return buildDocument(OPERATIONS, { version: assets().version, serverUrl: origin, tags: TAGS });
}

// Scalar's own defaults would fetch fonts from its servers; the page keeps to this origin.
const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Conveyor API reference</title>
  </head>
  <body>
    <div id="app"></div>
    <script src="docs/scalar.js"></script>
    <script>
      Scalar.createApiReference('#app', {
        url: 'openapi.json',
        withDefaultFonts: false,
        // Its toolbar links to Scalar's hosted services; a self-hosted reference does without.
        showDeveloperTools: 'never',
        agent: { disabled: true },
      });
    </script>
  </body>
</html>
`;

/** The routes serving the document and the reference page. */
export function openApiRoutes(): Hono {
  const app = new Hono();
  app.get('/openapi.json', (c) => c.json(openApiDocument(new URL(c.req.url).origin)));
  app.get('/docs', (c) => c.html(PAGE));
  app.get('/docs/scalar.js', (c) => {
    c.header('content-type', 'text/javascript; charset=utf-8');
    c.header('cache-control', 'public, max-age=3600');
    return c.body(scalarScript());
  });
  return app;
}
