import { request } from 'node:http';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusForError } from '../../src/api/errors.ts';
import { startApi } from '../../src/api/server.ts';
import { ConveyorError, NotFoundError, StepError } from '../../src/errors.ts';
import { generateSecretKey, parseSecretKey } from '../../src/secrets/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
let runId: string;
beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    worker: false,
    secretKey: parseSecretKey(generateSecretKey()),
  });
  // No worker: the run stays queued, which is all these tests need.
  runId = (await engine.submit({ name: 'edges', steps: { a: { run: 'true' } } })).id;
});
afterAll(async () => engine.close());

function expectErrorShape(body: unknown, code: string): void {
  expect(body).toMatchObject({ error: { code, message: expect.any(String) } });
}

describe('odd ids and names in URLs', () => {
  it.each([
    ['GET', () => `/v1/runs/${runId}:events`],
    ['GET', () => '/v1/runs/stalled-check'],
    ['GET', () => `/v1/runs/${runId}:events/events`],
    ['POST', () => `/v1/runs/${runId}:events/cancel`],
    ['POST', () => `/v1/runs/${runId}:log:a/retry`],
    ['GET', () => `/v1/runs/${runId}/steps/constructor/logs`],
    ['GET', () => `/v1/runs/${runId}/steps/__proto__/logs`],
    ['GET', () => `/v1/runs/${runId}/steps/a:b/logs`],
    ['GET', () => `/v1/runs/${runId}/steps/a/logs?host=__proto__`],
    ['GET', () => `/v1/runs/${runId}/steps/a/logs?host=a:b`],
    ['GET', () => '/v1/workflows/Not-A-Name'],
    ['DELETE', () => '/v1/workflows/a:b'],
    ['POST', () => '/v1/workflows/a%3Ab/runs'],
    ['GET', () => '/v1/hosts/a%3Ab'],
    ['GET', () => '/v1/hosts/constructor'],
    ['POST', () => '/v1/hosts/constructor/check'],
    ['DELETE', () => '/v1/hosts/-x'],
    ['DELETE', () => '/v1/secrets/not-a-secret-name'],
  ])('%s %s is 404 in the error shape', async (method, path) => {
    const res = await engine.request(method, path());
    expect(res.status).toBe(404);
    expectErrorShape(res.body, 'not_found');
  });

  it('a real run id and step still work', async () => {
    expect((await engine.request('GET', `/v1/runs/${runId}`)).status).toBe(200);
    expect((await engine.request('GET', `/v1/runs/${runId}/steps/a/logs`)).status).toBe(200);
  });
});

describe('every error has the API error shape', () => {
  it('404 for an unknown route, 405 with Allow for a known path, 413 for a large body', async () => {
    const unknown = await engine.request('GET', '/v1/nothing-here');
    expect(unknown.status).toBe(404);
    expectErrorShape(unknown.body, 'not_found');
    const wrongMethod = await engine.request('PATCH', `/v1/runs/${runId}`);
    expect(wrongMethod.status).toBe(405);
    expectErrorShape(wrongMethod.body, 'method_not_allowed');
    expect(wrongMethod.headers.get('allow')).toBe('DELETE, GET, HEAD');
    const put = await engine.request('PUT', '/v1/workflows');
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
    const large = await engine.request('POST', '/v1/runs', JSON.stringify({ pad: 'x'.repeat(1_100_000) }));
    expect(large.status).toBe(413);
    expectErrorShape(large.body, 'too_large');
  });

  it('431 for headers over the limit, with a JSON body, from the node server', async () => {
    const api = await startApi({
      redisUrl: redisUrl(),
      prefix: engine.prefix,
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    try {
      const res = await new Promise<{ status: number; type?: string; body: string }>((resolve, reject) => {
        const req = request(`${api.url}/healthz`, { headers: { 'x-big': 'y'.repeat(20_000) } }, (r) => {
          let body = '';
          r.on('data', (d) => {
            body += d;
          });
          r.on('end', () => resolve({ status: r.statusCode!, type: r.headers['content-type'], body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(res.status).toBe(431);
      expect(res.type).toBe('application/json');
      expectErrorShape(JSON.parse(res.body), 'headers_too_large');
    } finally {
      await api.close();
    }
  });

  it('maps error codes to statuses, never 500 for a known condition', () => {
    expect(statusForError(new StepError('secret_missing', 'x'))).toBe(422);
    expect(statusForError(new StepError('missing_secret', 'x'))).toBe(422);
    expect(statusForError(new StepError('some_new_step_code', 'x'))).toBe(422);
    expect(statusForError(new StepError('connection_refused', 'x'))).toBe(503);
    expect(statusForError(new NotFoundError('x'))).toBe(404);
    expect(statusForError(new ConveyorError('conflict', 'x'))).toBe(409);
    expect(statusForError(new ConveyorError('invalid_input', 'x'))).toBe(400);
  });
});

describe('hosts and their secrets', () => {
  const host = { address: '127.0.0.1', port: 1, user: 'nobody', auth: { secret: 'EDGE_KEY' } };

  it('PUT warns about a secret that does not exist, and the preflight reports it instead of failing', async () => {
    const put = await engine.request('PUT', '/v1/hosts/edge-1', host);
    expect(put.status).toBe(201);
    expect(put.body.warnings).toEqual([
      { path: 'auth.secret', message: expect.stringContaining('"EDGE_KEY"') },
    ]);

    const check = await engine.request('POST', '/v1/hosts/edge-1/check');
    expect(check.status).toBe(200);
    expect(check.body).toMatchObject({ host: 'edge-1', reachable: false, auth: null });
    expect(check.body.errors).toEqual([
      { code: 'missing_secret', message: expect.stringContaining('EDGE_KEY') },
    ]);

    expect((await engine.request('PUT', '/v1/secrets/EDGE_KEY', { value: 'not really a key' })).status).toBe(
      201,
    );
    const again = await engine.request('PUT', '/v1/hosts/edge-1', host);
    expect(again.status).toBe(200);
    expect(again.body.warnings).toEqual([]);
    // Now the connection is tried (nothing listens on port 1): still a report, never a 500.
    const refused = await engine.request('POST', '/v1/hosts/edge-1/check');
    expect(refused.status).toBe(200);
    expect(refused.body.errors.length).toBeGreaterThan(0);
  });
});
