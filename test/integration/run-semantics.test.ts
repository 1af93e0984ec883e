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

/** Every key under the test's prefix, with its type, sorted: what a dry run must leave alone. */
async function prefixKeys(): Promise<string[]> {
  const redis = engine.api.deps.redis;
  const found: string[] = [];
  for (const pattern of [`{${engine.prefix}}*`, `${engine.prefix}:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
  }
  return found.sort();
}

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

  beforeAll(async () => {
    expect((await engine.request('POST', '/v1/workflows', def)).status).toBe(201);
  });

  it('replays the same run for the same inputs, and is a 409 naming it for other inputs', async () => {
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

  it('gives concurrent requests with one key one run, and a 409 to every other inputs', async () => {
    const same = await Promise.all(
      Array.from({ length: 8 }, () =>
        engine.request('POST', '/v1/workflows/idem/runs', { inputs: { who: 'c' }, idempotencyKey: 'k-race' }),
      ),
    );
    expect(same.map((r) => r.status)).toEqual(Array(8).fill(202));
    const id = same[0]!.body.id;
    expect(new Set(same.map((r) => r.body.id))).toEqual(new Set([id]));
    const events = await engine.api.deps.store.readEvents(id);
    expect(events.filter((e) => e.type === 'run.queued')).toHaveLength(1);

    const mixed = await Promise.all(
      ['p', 'q', 'r', 's'].map((who) =>
        engine.request('POST', '/v1/workflows/idem/runs', { inputs: { who }, idempotencyKey: 'k-race-2' }),
      ),
    );
    expect(mixed.map((r) => r.status).sort()).toEqual([202, 409, 409, 409]);
    const winner = mixed.find((r) => r.status === 202)!.body.id;
    for (const lost of mixed.filter((r) => r.status === 409))
      expect(lost.body.error.message).toContain(winner);
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

describe('dry runs', () => {
  const def = {
    name: 'dry',
    inputs: { who: { type: 'string', required: true }, n: { type: 'number', default: 2 } },
    steps: { a: { run: 'echo ${{ inputs.who }}' }, b: { needs: ['a'], run: 'echo ${{ inputs.n }}' } },
  };

  it('plans an ad-hoc run and a registered one without writing anything to Redis', async () => {
    await engine.request('POST', '/v1/workflows', def);
    const before = await prefixKeys();
    expect(before.length).toBeGreaterThan(0);

    const adHoc = await engine.request('POST', '/v1/runs?dryRun=true', {
      workflow: def,
      inputs: { who: 'x' },
      idempotencyKey: 'dry-key',
    });
    expect(adHoc.status).toBe(200);
    expect(adHoc.body).toMatchObject({
      dryRun: true,
      workflow: 'dry',
      version: null,
      inputs: { who: 'x', n: 2 },
    });
    expect(adHoc.body.steps.map((s: { id: string; stage: number }) => [s.id, s.stage])).toEqual([
      ['a', 0],
      ['b', 1],
    ]);
    const registered = await engine.request('POST', '/v1/workflows/dry/runs?dryRun=true', {
      inputs: { who: 'y', n: 5 },
      idempotencyKey: 'dry-key',
    });
    expect(registered.status).toBe(200);
    expect(registered.body).toMatchObject({
      dryRun: true,
      workflow: 'dry',
      version: 1,
      inputs: { who: 'y', n: 5 },
    });

    expect(await prefixKeys()).toEqual(before);
    expect((await engine.request('GET', '/v1/runs?workflow=dry')).body.runs).toEqual([]);
    // The key was not claimed: a real run with it is a new run, not a replay.
    const real = await engine.request('POST', '/v1/workflows/dry/runs', {
      inputs: { who: 'y' },
      idempotencyKey: 'dry-key',
    });
    expect(real.status).toBe(202);
    expect(real.headers.get('idempotent-replayed')).toBeNull();
  });

  it('refuses bad inputs with the very error a real run gets, on both routes', async () => {
    const before = await prefixKeys();
    const bad = { inputs: { n: 'two', extra: 1 } };
    for (const [path, body] of [
      ['/v1/runs', { workflow: def, ...bad }],
      ['/v1/workflows/dry/runs', bad],
    ] as const) {
      const real = await engine.request('POST', path, body);
      const dry = await engine.request('POST', `${path}?dryRun=true`, body);
      expect(real.status).toBe(400);
      expect(dry.status).toBe(400);
      expect(dry.body).toEqual(real.body);
      expect(dry.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual([
        'inputs.extra',
        'inputs.n',
        'inputs.who',
      ]);
    }
    expect(await prefixKeys()).toEqual(before);
  });

  it("plans a retry with the first run's version and inputs, creating nothing", async () => {
    const first = await engine.request('POST', '/v1/workflows/dry/runs', { inputs: { who: 'r' } });
    const before = await prefixKeys();
    const plan = await engine.request('POST', `/v1/runs/${first.body.id}/retry?dryRun=true`);
    expect(plan.status).toBe(200);
    expect(plan.body).toMatchObject({
      dryRun: true,
      workflow: 'dry',
      version: 1,
      inputs: { who: 'r', n: 2 },
    });
    expect(await prefixKeys()).toEqual(before);
    expect((await engine.request('POST', '/v1/runs/run_nope/retry?dryRun=true')).status).toBe(404);
  });

  it('accepts only true and false: anything else is a 400 naming dryRun and starts nothing', async () => {
    const first = await engine.request('POST', '/v1/workflows/dry/runs', { inputs: { who: 'v' } });
    const before = await prefixKeys();
    const routes = [
      ['/v1/runs', { workflow: def, inputs: { who: 'v' } }],
      ['/v1/workflows/dry/runs', { inputs: { who: 'v' } }],
      [`/v1/runs/${first.body.id}/retry`, undefined],
    ] as const;
    for (const [path, body] of routes) {
      for (const query of [
        'dryRun=1',
        'dryRun=yes',
        'dryRun=TRUE',
        'dryRun=',
        'dryRun',
        'dryRun=true&dryRun=true',
      ]) {
        const res = await engine.request('POST', `${path}?${query}`, body);
        expect(res.status, `${path}?${query}`).toBe(400);
        expect(res.body.error.issues).toEqual([
          { path: 'dryRun', message: 'must be "true" or "false", given once' },
        ]);
      }
    }
    expect(await prefixKeys()).toEqual(before);
    for (const [path, body] of routes) {
      const res = await engine.request('POST', `${path}?dryRun=false`, body);
      expect(res.status, path).toBe(202);
      expect(res.body.id).toMatch(/^run_/);
    }
  });
});

describe('refused at submission', () => {
  const issuesOf = (res: { body: { error: { issues: Array<{ path: string; message: string }> } } }) =>
    Object.fromEntries(res.body.error.issues.map((i) => [i.path, i.message]));

  it('durations that are not positive, not finite or over 30 days, with their paths', async () => {
    const digits = `1${'0'.repeat(400)}`;
    // Raw text: JSON.stringify could not carry a 400-digit number.
    const json = `{"name":"durations","defaults":{"timeout":0,"retries":{"attempts":2,"delay":"31d"}},
      "steps":{"a":{"run":"true","timeout":${digits}},"b":{"run":"true","retries":{"attempts":2,"delay":1e300}},
      "c":{"run":"true","vm":{"timeout":"0ms"}}}}`;
    const res = await engine.request('POST', '/v1/workflows', json, { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    const issues = issuesOf(res);
    expect(Object.keys(issues).sort()).toEqual([
      'defaults.retries.delay',
      'defaults.timeout',
      'steps.a.timeout',
      'steps.b.retries.delay',
      'steps.c.vm.timeout',
    ]);
    expect(issues['steps.a.timeout']).toMatch(/longer than the maximum of 30 days/);
    expect(issues['defaults.timeout']).toMatch(/not a positive duration/);

    const yaml = `name: durations\nsteps:\n  a: { run: "true", timeout: ${digits} }\n`;
    const fromYaml = await engine.request(
      'POST',
      '/v1/runs',
      `workflow:\n  ${yaml.replaceAll('\n', '\n  ')}`,
      {
        'content-type': 'application/yaml',
      },
    );
    expect(fromYaml.status).toBe(400);
    expect(Object.keys(issuesOf(fromYaml))).toEqual(['workflow.steps.a.timeout']);
  });

  it('keeps 25d and 30d valid', async () => {
    const res = await engine.request('POST', '/v1/runs?dryRun=true', {
      workflow: {
        name: 'long',
        steps: { a: { run: 'true', timeout: '25d' }, b: { run: 'true', timeout: '30d' } },
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.steps.map((s: { timeoutMs: number }) => s.timeoutMs)).toEqual([
      2_160_000_000, 2_592_000_000,
    ]);
  });

  it('an expression reading an input the workflow does not declare, with its path', async () => {
    const res = await engine.request('POST', '/v1/workflows', {
      name: 'undeclared',
      inputs: { ref: { type: 'string', default: 'main' } },
      steps: {
        a: { run: 'echo ${{ inputs.ref }}', env: { X: '${{ inputs.reff }}' } },
        b: { if: "inputs.branch == 'main'", run: 'true' },
      },
    });
    expect(res.status).toBe(400);
    expect(issuesOf(res)).toEqual({
      'steps.a.env.X': 'expression reads inputs.reff, which is not declared under "inputs"',
      'steps.b.if': 'expression reads inputs.branch, which is not declared under "inputs"',
    });
    expect((await engine.request('GET', '/v1/workflows/undeclared')).status).toBe(404);
  });
});
