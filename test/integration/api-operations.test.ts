/**
 * Operations on the real API over the test Redis: `X-Request-Id` on every answer, one redacted
 * pino line per request (captured from the logger's stream), run start and end lines, CORS.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { parseTokens } from '../../src/api/auth/index.ts';
import { answerClientErrors } from '../../src/api/client-errors.ts';
import { MAX_REQUEST_ID_LENGTH } from '../../src/api/middleware/index.ts';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { createLogger } from '../../src/logger.ts';
import { parseSecretKey } from '../../src/secrets/index.ts';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { type ConveyorWorker, startWorker } from '../../src/workers/worker.ts';
import { captureLog } from '../support/log-capture.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

const prefix = testPrefix(import.meta.url);
const ADMIN = `admin-${randomBytes(12).toString('hex')}`;
const READ = `read-${randomBytes(12).toString('hex')}`;
const SECRET_VALUE = `hunter2-${randomBytes(12).toString('hex')}`;
const log = captureLog();
let api: ConveyorApi;
let worker: ConveyorWorker;

beforeAll(async () => {
  // `debug`: request headers are logged too, so redaction is what keeps the token out.
  const logger = createLogger('debug', log.stream);
  api = await startApi({
    redisUrl: redisUrl(),
    prefix,
    logger,
    tokens: parseTokens(`${ADMIN},read:${READ}`, 'CONVEYOR_API_TOKENS'),
    secretKey: parseSecretKey(randomBytes(32).toString('base64')),
  });
  worker = await startWorker({
    redisUrl: redisUrl(),
    prefix,
    executors: [new LocalExecutor({ killGraceMs: 1000 })],
    logger,
  });
});
afterAll(async () => {
  await worker?.close();
  await api?.close();
  await dropPrefix(redisUrl(), prefix);
});

const admin = { authorization: `Bearer ${ADMIN}` };

async function call(
  app: ConveyorApi['app'],
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
) {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await app.request(path, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

describe('X-Request-Id', () => {
  it('is made when absent, on success and on every kind of error', async () => {
    const answers = [
      await call(api.app, 'GET', '/healthz'),
      await call(api.app, 'GET', '/v1/runs', admin),
      await call(api.app, 'GET', '/v1/runs'), // 401
      await call(api.app, 'GET', '/v1/runs', { authorization: `Bearer ${READ}` }), // 200 for read
      await call(api.app, 'DELETE', '/v1/secrets/NOPE', { authorization: `Bearer ${READ}` }), // 403
      await call(api.app, 'GET', '/v1/runs/run_missing', admin), // 404
      await call(api.app, 'PATCH', '/v1/runs', admin), // 405
      await call(api.app, 'POST', '/v1/runs', admin, '{nope'), // 400
      await call(api.app, 'POST', '/v1/runs', { ...admin, 'content-length': String(1 << 30) }, '{}'), // 413
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 401, 200, 403, 404, 405, 400, 413]);
    const ids = answers.map((a) => a.headers.get('x-request-id'));
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("keeps a client's sane id, replaces one that is too long or has unsafe characters", async () => {
    const kept = await call(api.app, 'GET', '/v1/runs/run_missing', {
      ...admin,
      'x-request-id': 'trace-42_a=b',
    });
    expect(kept.status).toBe(404);
    expect(kept.headers.get('x-request-id')).toBe('trace-42_a=b');
    for (const bad of ['x'.repeat(MAX_REQUEST_ID_LENGTH + 1), 'a b', 'id\u00e9', '../etc', 'a"}{']) {
      const res = await call(api.app, 'GET', '/healthz', { 'x-request-id': bad });
      const id = res.headers.get('x-request-id');
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
    }
    const longest = 'y'.repeat(MAX_REQUEST_ID_LENGTH);
    expect(
      (await call(api.app, 'GET', '/healthz', { 'x-request-id': longest })).headers.get('x-request-id'),
    ).toBe(longest);
  });
});

describe('X-Request-Id on answers of the HTTP parser', () => {
  it('a request Node cannot parse gets the error shape and an id too', async () => {
    const server = createServer(() => undefined);
    answerClientErrors(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const answer = await new Promise<string>((resolve, reject) => {
        let text = '';
        const socket = connect(port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
        socket.on('data', (d) => {
          text += d;
        });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toMatch(/\r\nX-Request-Id: [0-9a-f-]{36}\r\n/);
      expect(answer).toContain('"code":"invalid_input"');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('request logs', () => {
  it('one line per request with method, path without query, status, duration, id and role', async () => {
    const id = `line-${randomBytes(4).toString('hex')}`;
    await call(api.app, 'GET', `/v1/runs?limit=5&workflow=${ADMIN}`, { ...admin, 'x-request-id': id });
    const line = await log.waitFor((l) => l.msg === 'request' && l.requestId === id);
    expect(line).toMatchObject({ method: 'GET', path: '/v1/runs', status: 200, role: 'admin', level: 30 });
    expect(typeof line.durationMs).toBe('number');
    expect(JSON.stringify(line)).not.toContain('limit=5');

    const denied = `denied-${randomBytes(4).toString('hex')}`;
    await call(api.app, 'GET', '/v1/runs', { 'x-request-id': denied });
    expect(await log.waitFor((l) => l.msg === 'request' && l.requestId === denied)).toMatchObject({
      status: 401,
      role: null,
    });
  });

  it('lines written during a request carry its id once, whichever logger writes them', async () => {
    const app = createApp(api.deps);
    app.get('/log-probe', (c) => {
      api.deps.logger.info('from the process logger');
      c.get('logger').child({ part: 'x' }).info('from a child of the child');
      return c.text('ok');
    });
    const res = await app.request('/log-probe', { headers: { 'x-request-id': 'probe-1' } });
    expect(res.status).toBe(200);
    const raw = log.text().split('\n');
    for (const msg of ['from the process logger', 'from a child of the child']) {
      const line = raw.find((l) => l.includes(msg))!;
      expect(JSON.parse(line).requestId).toBe('probe-1');
      expect(line.match(/"requestId"/g)).toHaveLength(1);
    }
    // Outside a request, nothing is added.
    api.deps.logger.info('outside any request');
    expect(log.lines().find((l) => l.msg === 'outside any request')).not.toHaveProperty('requestId');
  });

  it('never writes a secret PUT value or an Authorization header, at debug level', async () => {
    const id = `secret-${randomBytes(4).toString('hex')}`;
    const res = await call(
      api.app,
      'PUT',
      '/v1/secrets/OPS_KEY',
      { ...admin, cookie: `session=${ADMIN}`, 'x-request-id': id },
      { value: SECRET_VALUE },
    );
    expect(res.status).toBe(201);
    const line = await log.waitFor((l) => l.msg === 'request' && l.requestId === id);
    expect(line).toMatchObject({ method: 'PUT', path: '/v1/secrets/OPS_KEY', status: 201, role: 'admin' });
    // The headers are in the debug line, with the credentials censored.
    expect(line.headers).toMatchObject({ authorization: '[redacted]', cookie: '[redacted]' });
    // A failing PUT (a body the schema refuses) echoes nothing of the value either.
    await call(api.app, 'PUT', '/v1/secrets/OPS_KEY', admin, { value: SECRET_VALUE, extra: SECRET_VALUE });
    expect(log.text()).not.toContain(SECRET_VALUE);
    expect(log.text()).not.toContain(ADMIN);
    expect(log.text()).not.toContain(READ);
  });

  it('a run has a start line with the request id and an end line with status and duration', async () => {
    const id = `run-${randomBytes(4).toString('hex')}`;
    const res = await call(
      api.app,
      'POST',
      '/v1/runs',
      { ...admin, 'x-request-id': id },
      { workflow: { name: 'ops-log', steps: { a: { run: 'true' } } } },
    );
    expect(res.status).toBe(202);
    const runId = res.body.id as string;
    const finished = await log.waitFor((l) => l.msg === 'run finished' && l.runId === runId);
    expect(finished).toMatchObject({ workflow: 'ops-log', status: 'succeeded' });
    expect(finished.durationMs).toBeGreaterThanOrEqual(0);
    const started = log.lines().find((l) => l.msg === 'run started' && l.runId === runId);
    expect(started).toMatchObject({
      requestId: id,
      workflow: 'ops-log',
      status: 'queued',
      trigger: 'http',
      steps: 1,
    });
  });
});

describe('CORS', () => {
  const ORIGIN = 'https://ops.example.com';
  const preflight = {
    origin: ORIGIN,
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'authorization, content-type',
  };

  it('is off by default: no CORS headers on a preflight or a simple request', async () => {
    const open = createApp(api.deps); // no tokens: the preflight reaches the router
    const pre = await call(open, 'OPTIONS', '/v1/runs', preflight);
    expect(pre.status).toBe(405);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const simple = await call(open, 'GET', '/healthz', { origin: ORIGIN });
    expect(simple.status).toBe(200);
    expect(simple.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers preflights for listed origins before the token check, without credentials', async () => {
    const app = createApp(api.deps, {
      tokens: parseTokens(ADMIN, 'CONVEYOR_API_TOKENS'),
      corsOrigins: [ORIGIN, 'http://localhost:5173'],
    });
    const pre = await call(app, 'OPTIONS', '/v1/runs', preflight);
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(pre.headers.get('access-control-allow-headers')?.split(',')).toContain('Authorization');
    expect(pre.headers.get('access-control-allow-methods')?.split(',')).toContain('POST');
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
    expect(pre.headers.get('x-request-id')).toBeTruthy();

    const other = await call(app, 'OPTIONS', '/v1/runs', { ...preflight, origin: 'https://evil.example' });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();

    const simple = await call(app, 'GET', '/v1/runs', { ...admin, origin: ORIGIN });
    expect(simple.status).toBe(200);
    expect(simple.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(simple.headers.get('access-control-expose-headers')?.split(',')).toContain('X-Request-Id');
    expect(simple.headers.get('vary')).toContain('Origin');

    // An error is readable by the page too (a 401 it must react to).
    const denied = await call(app, 'GET', '/v1/runs', { origin: ORIGIN });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(denied.body.error.code).toBe('unauthorized');
  });

  it('`*` allows any origin', async () => {
    const app = createApp(api.deps, { corsOrigins: '*' });
    const pre = await call(app, 'OPTIONS', '/v1/runs', { ...preflight, origin: 'https://anywhere.example' });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    const simple = await call(app, 'GET', '/healthz', { origin: 'https://anywhere.example' });
    expect(simple.headers.get('access-control-allow-origin')).toBe('*');
  });
});
