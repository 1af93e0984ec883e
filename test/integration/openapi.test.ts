/**
 * The OpenAPI document: served at /openapi.json without a token, complete (every route of the
 * app is in it, with the role the access table gives it), accepted by Redocly's linter and by
 * openapi-typescript, whose output type-checks and equals the committed client types.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_TYPES, generateClientTypes } from '../../infra/openapi-gen/generate.ts';
import { accessFor, matchesPattern, parseTokens } from '../../src/api/auth/index.ts';
import { openApiPath, UNDOCUMENTED } from '../../src/api/openapi/index.ts';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { CHROMIUM, CHROMIUM_FLAGS, LOOPBACK_ONLY } from '../support/browser.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const prefix = testPrefix(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'conveyor-openapi-'));
let api: ConveyorApi;
// biome-ignore lint/suspicious/noExplicitAny: the document is read by path as plain JSON
let doc: any;

beforeAll(async () => {
  api = await startApi({
    redisUrl: redisUrl(),
    prefix,
    logger: pino({ level: 'silent' }),
    tokens: parseTokens('read:read-token-0123456789', 'CONVEYOR_API_TOKENS'),
  });
  const res = await api.app.request('http://api.example:8080/openapi.json');
  expect(res.status).toBe(200);
  doc = await res.json();
});
afterAll(async () => {
  await api.close();
  await dropPrefix(redisUrl(), prefix);
  rmSync(dir, { recursive: true, force: true });
});

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
// biome-ignore lint/suspicious/noExplicitAny: operations are plain JSON
function operations(): Array<{ method: string; path: string; op: any }> {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item as object)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ method, path, op })),
  );
}

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document, public, with the server it was fetched from', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.servers[0].url).toBe('http://api.example:8080');
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('documents every route the app registers, and nothing it does not', () => {
    const registered = new Set(
      api.app.routes
        .filter((r) => r.method !== 'ALL' && !UNDOCUMENTED.some((u) => matchesPattern(u.path, r.path)))
        .map((r) => `${r.method} ${openApiPath(r.path)}`),
    );
    for (const entry of UNDOCUMENTED) expect(entry.reason.length, entry.path).toBeGreaterThan(10);
    const documented = new Set(operations().map(({ method, path }) => `${method.toUpperCase()} ${path}`));
    expect(
      [...registered].filter((r) => !documented.has(r)),
      'routes missing from the document',
    ).toEqual([]);
    expect(
      [...documented].filter((d) => !registered.has(d)),
      'documented routes the app lacks',
    ).toEqual([]);
  });

  it('gives each operation the role of the access table, its security and its error responses', () => {
    for (const { method, path, op } of operations()) {
      const honoPath = path.replace(/\{(\w+)\}/g, ':$1');
      const access = accessFor(method.toUpperCase(), honoPath);
      const where = `${method} ${path}`;
      expect(op['x-required-role'], where).toBe(access);
      const says =
        access === 'public'
          ? 'Public'
          : access === 'signature'
            ? 'authenticated by its signature'
            : `role \`${access}\``;
      expect(op.description, where).toContain(says);
      const authenticated = access !== 'public' && access !== 'signature';
      expect(op.security, where).toEqual(authenticated ? [{ bearer: [] }] : []);
      const statuses = Object.keys(op.responses).map(Number);
      if (authenticated) expect(statuses, where).toEqual(expect.arrayContaining([401, 403, 429]));
      if (path.includes('{')) expect(statuses, where).toContain(404);
      if (op.requestBody) expect(statuses, where).toEqual(expect.arrayContaining([400, 413, 415]));
      for (const status of statuses.filter((s) => s >= 400)) {
        const schema = op.responses[status].content['application/json'].schema.$ref;
        expect(schema, `${where} ${status}`).toMatch(/^#\/components\/schemas\/(Error|Health)$/);
      }
    }
    expect(doc.paths['/healthz'].get['x-required-role']).toBe('public');
    expect(doc.paths['/v1/runs/{id}/cancel'].post['x-required-role']).toBe('run');
    expect(doc.paths['/v1/secrets/{name}'].put['x-required-role']).toBe('admin');
  });

  it('describes request bodies with the schemas the handlers validate with', () => {
    const secret = doc.components.schemas.SecretValue;
    expect(secret).toMatchObject({ required: ['value'], additionalProperties: false });
    expect(secret.properties.value.maxLength).toBe(64 * 1024);
    const definition = doc.components.schemas.Definition;
    expect(definition.required).toEqual(['name', 'steps']);
    expect(definition.additionalProperties).toBe(false);
    const runs = doc.paths['/v1/workflows/{name}/runs'].post;
    expect(runs.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/RunRequest');
    expect(doc.paths['/v1/workflows'].post.requestBody.content).toHaveProperty('application/yaml');
  });

  it('passes redocly lint with no errors', async () => {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
    const cli = join(root, 'node_modules/.bin/redocly');
    const args = ['lint', file, '--config', join(root, 'redocly.yaml'), '--format', 'json'];
    // Exit 1 means errors; the JSON report is printed either way.
    const out = await run(cli, args, { env, maxBuffer: 16 << 20 }).catch((err) => err);
    const report = JSON.parse(out.stdout) as { totals: { errors: number }; problems: unknown[] };
    expect(report.problems.filter((p) => (p as { severity: string }).severity === 'error')).toEqual([]);
    expect(report.totals.errors).toBe(0);
  });

  it('makes openapi-typescript types that type-check and equal the committed client types', async () => {
    const generated = await generateClientTypes(doc);
    const file = join(dir, 'schema.ts');
    writeFileSync(file, `${generated}\nexport type Run = components['schemas']['Run'];\n`);
    const tsc = join(root, 'node_modules/.bin/tsc');
    // Run in the temporary folder: the project's tsconfig.json would make tsc refuse a file argument.
    const args = ['--noEmit', '--strict', '--target', 'ES2022', '--module', 'NodeNext', file];
    const { stdout } = await run(tsc, args, { cwd: dir });
    expect(stdout).toBe('');
    // The committed client is generated from the same document (its server URL aside).
    expect(readFileSync(CLIENT_TYPES, 'utf8'), 'src/client/schema.ts is stale: npm run openapi:client').toBe(
      await generateClientTypes(),
    );
  });
});

describe('GET /docs', () => {
  it('serves the Scalar reference with every script from this API', async () => {
    const page = await api.app.request('/docs');
    expect(page.status).toBe(200);
    const html = await page.text();
    const scripts = [...html.matchAll(/<script[^>]*src="([^"]+)"/g)].map((m) => m[1]);
    expect(scripts).toEqual(['docs/scalar.js']);
    expect(html).not.toMatch(/https?:\/\//);
    const script = await api.app.request(new URL(scripts[0]!, 'http://localhost/docs').pathname);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(await script.text()).toContain('createApiReference');
  });

  // .ci/run installs Chromium (the bull-board test needs it too); without it this one is skipped.
  it.skipIf(!existsSync(CHROMIUM))(
    'renders in headless Chromium with no host but the API reachable',
    async () => {
      const served = await startApi({
        redisUrl: redisUrl(),
        prefix,
        logger: pino({ level: 'silent' }),
        port: 0,
      });
      try {
        const args = [
          ...CHROMIUM_FLAGS,
          `--user-data-dir=${mkdtempSync(join(dir, 'chromium-'))}`,
          LOOPBACK_ONLY,
          // Lets the page's scripts run to idle before the DOM is printed (virtual time, not a wait).
          '--virtual-time-budget=10000',
          '--dump-dom',
          `${served.url}/docs`,
        ];
        const { stdout } = await run(CHROMIUM, args, { maxBuffer: 64 << 20 });
        // Operation summaries appear only once Scalar has fetched and rendered the document.
        expect(stdout).toContain('Liveness');
        expect(stdout).toContain('Readiness: Redis is reachable');
      } finally {
        await served.close();
      }
    },
  );

  it('needs no token while the API does', async () => {
    expect((await api.app.request('/v1/runs')).status).toBe(401);
    expect((await api.app.request('/docs')).status).toBe(200);
  });
});
