import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url));
});
afterAll(async () => engine.close());

const diamondYaml = `
name: diamond-yaml
inputs:
  who: { type: string, default: world }
steps:
  a:
    run: echo "name=\${{ inputs.who }}" >> "$CONVEYOR_OUTPUT"
  b: { needs: [a], run: echo b }
  c: { needs: [a], run: echo c }
  d:
    needs: [b, c]
    run: echo "hello \${{ steps.a.outputs.name }}"
`;

describe('workflows API', () => {
  it('registers YAML, returns the same version for an identical body and a new one for a change', async () => {
    const first = await engine.request('POST', '/v1/workflows', diamondYaml, {
      'content-type': 'application/yaml',
    });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ name: 'diamond-yaml', version: 1 });
    const again = await engine.request('POST', '/v1/workflows', diamondYaml, {
      'content-type': 'application/yaml',
    });
    expect(again.status).toBe(200);
    expect(again.body.version).toBe(1);
    const changed = await engine.request('POST', '/v1/workflows', diamondYaml.replace('echo b', 'echo B'), {
      'content-type': 'application/yaml',
    });
    expect(changed.status).toBe(201);
    expect(changed.body.version).toBe(2);

    const latest = await engine.request('GET', '/v1/workflows/diamond-yaml');
    expect(latest.status).toBe(200);
    expect(latest.body.version).toBe(2);
    const v1 = await engine.request('GET', '/v1/workflows/diamond-yaml?version=1');
    expect(v1.body.definition.steps.b.run).toBe('echo b');
    const list = await engine.request('GET', '/v1/workflows');
    expect(list.body.workflows).toContainEqual({ name: 'diamond-yaml', version: 2 });
  });

  it('runs a registered workflow to success, with idempotency keys', async () => {
    const started = await engine.request('POST', '/v1/workflows/diamond-yaml/runs', {
      inputs: { who: 'api' },
      idempotencyKey: 'k1',
    });
    expect(started.status).toBe(202);
    expect(['queued', 'running']).toContain(started.body.status); // a fast worker may already have started it
    expect(started.body.workflow).toEqual({ name: 'diamond-yaml', version: 2 });
    const replay = await engine.request('POST', '/v1/workflows/diamond-yaml/runs', {
      inputs: { who: 'api' },
      idempotencyKey: 'k1',
    });
    expect(replay.status).toBe(202);
    expect(replay.body.id).toBe(started.body.id);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');

    const { run } = await engine.waitForRun(started.body.id);
    expect(run.status).toBe('succeeded');
    const doc = await engine.request('GET', `/v1/runs/${run.id}`);
    expect(doc.body.steps.a.outputs).toEqual({ name: 'api' });
    const logs = await engine.request('GET', `/v1/runs/${run.id}/steps/d/logs`);
    expect(logs.status).toBe(200);
    expect(logs.body).toBe('hello api\n');
    const listed = await engine.request('GET', '/v1/runs?workflow=diamond-yaml&status=succeeded');
    expect(listed.body.runs.map((r: { id: string }) => r.id)).toContain(run.id);

    const retried = await engine.request('POST', `/v1/runs/${run.id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body.id).not.toBe(run.id);
    expect(retried.body.inputs).toEqual({ who: 'api' });
    expect((await engine.waitForRun(retried.body.id)).run.status).toBe('succeeded');
  });

  it('rejects a cyclic definition with 400 and every problem with its path', async () => {
    const res = await engine.request('POST', '/v1/workflows', {
      name: 'cyclic',
      steps: {
        a: { needs: ['c'], run: 'true' },
        b: { needs: ['a', 'ghost'], run: 'true' },
        c: { needs: ['b'], run: 'true' },
        d: {},
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_input');
    expect(res.body.error.issues).toEqual(
      expect.arrayContaining([
        { path: 'steps.a.needs', message: 'cycle: a → c → b → a' },
        { path: 'steps.b.needs[1]', message: 'unknown step "ghost"' },
        { path: 'steps.d', message: 'a step needs "run" or "function"' },
      ]),
    );
  });

  it('prefixes ad-hoc definition issues with workflow.', async () => {
    const res = await engine.request('POST', '/v1/runs', {
      workflow: { name: 'x', steps: { a: { run: 'true', timeout: 'soon' } } },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.issues[0].path).toBe('workflow.steps.a.timeout');
  });

  it('rejects bad inputs, bodies and media types with the right status', async () => {
    const badInput = await engine.request('POST', '/v1/workflows/diamond-yaml/runs', {
      inputs: { who: 3, extra: true },
    });
    expect(badInput.status).toBe(400);
    expect(badInput.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual([
      'inputs.extra',
      'inputs.who',
    ]);
    const badJson = await engine.request('POST', '/v1/workflows', '{"name": ', {
      'content-type': 'application/json',
    });
    expect(badJson.status).toBe(400);
    const dupes = await engine.request(
      'POST',
      '/v1/workflows',
      '{"name":"d","steps":{"a":{"run":"x"},"a":{"run":"y"}}}',
    );
    expect(dupes.status).toBe(400);
    expect(dupes.body.error.issues).toEqual([{ path: 'steps.a', message: 'duplicate key "a"' }]);
    const media = await engine.request('POST', '/v1/workflows', 'name: x', { 'content-type': 'text/plain' });
    expect(media.status).toBe(415);
    const huge = await engine.request(
      'POST',
      '/v1/workflows',
      JSON.stringify({ name: 'big', description: 'x'.repeat(1_100_000), steps: {} }),
    );
    expect(huge.status).toBe(413);
    const unknownField = await engine.request('POST', '/v1/workflows/diamond-yaml/runs', { input: {} });
    expect(unknownField.status).toBe(400);
  });

  it('answers 404 in the API error shape for unknown things', async () => {
    for (const [method, path] of [
      ['GET', '/v1/workflows/nope'],
      ['POST', '/v1/workflows/nope/runs'],
      ['DELETE', '/v1/workflows/nope'],
      ['GET', '/v1/runs/run_nope'],
      ['GET', '/v1/runs/run_nope/events'],
      ['GET', '/v1/runs/run_nope/steps/a/logs'],
      ['POST', '/v1/runs/run_nope/cancel'],
      ['GET', '/v1/nothing-here'],
    ] as const) {
      const res = await engine.request(method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
  });

  it('deletes a workflow but keeps its runs', async () => {
    await engine.request('POST', '/v1/workflows', { name: 'short-lived', steps: { a: { run: 'true' } } });
    const started = await engine.request('POST', '/v1/workflows/short-lived/runs');
    await engine.waitForRun(started.body.id);
    expect((await engine.request('DELETE', '/v1/workflows/short-lived')).status).toBe(204);
    expect((await engine.request('GET', '/v1/workflows/short-lived')).status).toBe(404);
    expect((await engine.request('GET', `/v1/runs/${started.body.id}`)).body.status).toBe('succeeded');
  });

  it('returns a dry-run plan without running anything', async () => {
    const res = await engine.request('POST', '/v1/runs?dryRun=true', {
      workflow: {
        name: 'plan',
        steps: {
          a: { run: 'true' },
          b: { needs: ['a'], run: 'true' },
          c: { needs: ['a', 'b'], run: 'true' },
        },
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.steps.map((s: { id: string; stage: number }) => [s.id, s.stage])).toEqual([
      ['a', 0],
      ['b', 1],
      ['c', 2],
    ]);
    expect((await engine.request('GET', '/v1/runs?workflow=plan')).body.runs).toEqual([]);
  });

  it('refuses to store secrets without CONVEYOR_SECRET_KEY, and says why', async () => {
    const res = await engine.request('PUT', '/v1/secrets/token', { value: 'x' });
    expect(res.status).toBe(422);
    expect(res.body.error.message).toMatch(/CONVEYOR_SECRET_KEY is not set/);
    expect((await engine.request('GET', '/v1/secrets')).body).toEqual({ secrets: [] });
    const badName = await engine.request('PUT', '/v1/secrets/9lives', { value: 'x' });
    expect(badName.status).toBe(400);
  });

  it('fails a step that reads a secret that is not set, naming it', async () => {
    const run = await engine.submit({
      name: 'nosecret',
      steps: { a: { run: 'echo ${{ secrets.MISSING }}' } },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.a!.error).toEqual({ code: 'secret_missing', message: 'secret not set: MISSING' });
  });

  it('answers health and readiness', async () => {
    expect((await engine.request('GET', '/healthz')).status).toBe(200);
    expect((await engine.request('GET', '/readyz')).body).toEqual({ status: 'ready' });
  });
});
