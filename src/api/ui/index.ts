/**
 * The run viewer at `GET /ui`: one HTML page, its ES modules and styles from `./assets/`, and
 * dagre's browser bundle from its package, all served by this API (no build step, no CDN). The
 * files hold no data and need no token; every API call the page makes sends one.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Hono } from 'hono';
import { NotFoundError } from '../../errors.ts';

const require = createRequire(import.meta.url);
const ASSETS = new URL('./assets/', import.meta.url);

/** The page may load and call nothing but this origin; nothing may frame it. */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/** Every file the page may load, by the name it is served under: nothing else is readable. */
const FILES: Record<string, () => string> = {
  'index.html': () => readFileSync(new URL('index.html', ASSETS), 'utf8'),
  'dagre.js': () =>
    // The package exports no subpaths: found from its package.json. Without its source-map
    // comment, as the map is not served.
    readFileSync(
      join(dirname(require.resolve('@dagrejs/dagre/package.json')), 'dist/dagre.esm.js'),
      'utf8',
    ).replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'),
  ...Object.fromEntries(
    [
      'app.css',
      'api.js',
      'dom.js',
      'graph.js',
      'layout.js',
      'logs.js',
      'main.js',
      'run-view.js',
      'runs-list.js',
      'sse.js',
      'status.js',
    ].map((name) => [name, () => readFileSync(new URL(name, ASSETS), 'utf8')]),
  ),
};

const cache = new Map<string, string>();
function asset(name: string): string {
  let body = cache.get(name);
  if (body === undefined) {
    body = FILES[name]!();
    cache.set(name, body);
  }
  return body;
}

/** The run viewer's routes, to mount at `/ui`. */
export function uiRoutes(): Hono {
  const app = new Hono();
  const send = (name: string) => {
    const type = TYPES[name.slice(name.lastIndexOf('.') + 1)]!;
    return new Response(asset(name), {
      headers: {
        'content-type': type,
        'content-security-policy': UI_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        // Revalidated on each load, so an upgraded API never runs with stale modules.
        'cache-control': 'no-cache',
      },
    });
  };
  app.get('/', () => send('index.html'));
  app.get('/:file', (c) => {
    const name = c.req.param('file');
    if (!Object.hasOwn(FILES, name)) throw new NotFoundError(`no file "${name}" in the run viewer`);
    return send(name);
  });
  return app;
}
