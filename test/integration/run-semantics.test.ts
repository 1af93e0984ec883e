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

describe('idempotency keys', () => {
  const def = {
    name: 'idem',
    inputs: { who: { type: 'string', default: 'world' } },
    steps: { a: { run: 'echo ${{ inputs.who }}' } },
  };

  it('replays the same run for the same inputs, and is a 409 naming it for other inputs', async () => {
    await engine.request('POST', '/v1/workflows', def);
    const first = await engine.request('POST', '/v1/workflows/idem/runs', {
      inputs: { who: 'a' },
      idempotencyKey: 'k-inputs',
    });
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const replay = await engine.request('POST', '/v1/workflows/idem/runs', {
      inputs: { who: 'a' },
      idempotencyKey: 'k-inputs',
    });
    expect(replay.status).toBe(202);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.id).toBe(first.body.id);

    const other = await engine.request('POST', '/v1/workflows/idem/runs', {
      inputs: { who: 'b' },
      idempotencyKey: 'k-inputs',
    });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('conflict');
    expect(other.body.error.message).toContain(first.body.id);
    expect(other.body.error.message).toContain('"k-inputs"');
  });

  it('treats omitted inputs and their defaults as the same run', async () => {
    const first = await engine.request('POST', '/v1/workflows/idem/runs', { idempotencyKey: 'k-default' });
    const same = await engine.request('POST', '/v1/workflows/idem/runs', {
      inputs: { who: 'world' },
      idempotencyKey: 'k-default',
    });
    expect(same.status).toBe(202);
    expect(same.body.id).toBe(first.body.id);
  });

  it('is a 409 for a new version of the workflow, and for another ad-hoc definition', async () => {
    const first = await engine.request('POST', '/v1/workflows/idem/runs', { idempotencyKey: 'k-version' });
    const changed = { ...def, steps: { a: { run: 'echo changed ${{ inputs.who }}' } } };
    expect((await engine.request('POST', '/v1/workflows', changed)).status).toBe(201);
    const after = await engine.request('POST', '/v1/workflows/idem/runs', { idempotencyKey: 'k-version' });
    expect(after.status).toBe(409);
    expect(after.body.error.message).toContain(first.body.id);

    const adHoc = { name: 'idem-adhoc', steps: { a: { run: 'echo one' } } };
    const one = await engine.request('POST', '/v1/runs', { workflow: adHoc, idempotencyKey: 'k-adhoc' });
    expect(one.status).toBe(202);
    const sameDef = await engine.request('POST', '/v1/runs', { workflow: adHoc, idempotencyKey: 'k-adhoc' });
    expect(sameDef.body.id).toBe(one.body.id);
    const otherDef = await engine.request('POST', '/v1/runs', {
      workflow: { ...adHoc, steps: { a: { run: 'echo two' } } },
      idempotencyKey: 'k-adhoc',
    });
    expect(otherDef.status).toBe(409);
    expect(otherDef.body.error.message).toContain(one.body.id);
  });
});
