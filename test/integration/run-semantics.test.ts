/**
 * Issue 7's semantics at the API, on a real Redis, with no worker (nothing here needs a step
 * to run, and a run that stays queued keeps the key counts and listings still).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
});
afterAll(async () => engine.close());

describe('workflow versions', () => {
  it('never reuses a version number after DELETE', async () => {
    const v1 = { name: 'versioned', steps: { a: { run: 'echo one' } } };
    const v2 = { name: 'versioned', steps: { a: { run: 'echo two' } } };
    expect((await engine.request('POST', '/v1/workflows', v1)).body.version).toBe(1);
    expect((await engine.request('POST', '/v1/workflows', v2)).body.version).toBe(2);
    const run = await engine.request('POST', '/v1/workflows/versioned/runs');
    expect(run.body.workflow).toEqual({ name: 'versioned', version: 2 });

    expect((await engine.request('DELETE', '/v1/workflows/versioned')).status).toBe(204);
    const again = await engine.request('POST', '/v1/workflows', v1);
    expect(again.status).toBe(201);
    expect(again.body).toEqual({ name: 'versioned', version: 3 });
    expect((await engine.request('GET', '/v1/workflows/versioned?version=1')).status).toBe(404);
    expect((await engine.request('GET', '/v1/workflows/versioned')).body.definition.steps.a.run).toBe(
      'echo one',
    );
    // The old run still names the version it ran, which no new definition has taken.
    expect((await engine.request('GET', `/v1/runs/${run.body.id}`)).body.workflow.version).toBe(2);

    expect((await engine.request('DELETE', '/v1/workflows/versioned')).status).toBe(204);
    expect((await engine.request('POST', '/v1/workflows', v2)).body.version).toBe(4);
  });
});
