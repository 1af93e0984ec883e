/**
 * Each version's summary (`s:<n>` beside `v:<n>`): what the listing and trigger matching read
 * instead of whole definitions, its fallback for versions stored before it, and its deletion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateDefinition } from '../../src/flows/index.ts';
import { withScripts } from '../../src/store/scripts.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { delivery, github } from '../support/webhooks.ts';

// No worker: these tests look at what a trigger starts, not at the runs.
let engine: TestEngine;
beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    worker: false,
    webhookSecrets: ['secret'],
  });
});
afterAll(async () => engine.close());

const redis = () => engine.api.deps.redis;
const hashOf = (name: string) => engine.api.deps.store.keys.workflow(name);

async function register(definition: Record<string, unknown>): Promise<number> {
  const res = await engine.request('POST', '/v1/workflows', definition);
  expect(res.status, JSON.stringify(res.body)).toBeOneOf([200, 201]);
  return res.body.version;
}

/** Makes a stored version unreadable: a reader that parses it fails the request. */
async function spoil(name: string, version: number): Promise<void> {
  await redis().hset(hashOf(name), `v:${version}`, '{not json');
}

const push = (repository: string) =>
  engine.request(
    'POST',
    '/v1/hooks/github',
    ...Object.values(delivery('github', github.push({ repository, branch: 'main' }), { secret: 'secret' })),
  );

const startedNames = (body: { runs: Array<{ workflow: { name: string } }> }) =>
  body.runs.map((r) => r.workflow.name);

describe('workflow summaries', () => {
  it('are stored with each version and list the latest one with its description', async () => {
    const definition = {
      name: 'sum-listed',
      description: 'first',
      on: { push: { repository: 'sum/listed', branches: ['main'] }, event: ['sum.listed'] },
      steps: { a: { run: 'true' }, b: { run: 'true', needs: 'a' } },
    };
    expect(await register(definition)).toBe(1);
    expect(await register({ ...definition, description: 'second' })).toBe(2);
    const stored = JSON.parse((await redis().hget(hashOf('sum-listed'), 's:2'))!);
    expect(stored).toEqual({
      version: 2,
      name: 'sum-listed',
      createdAt: expect.any(String),
      description: 'second',
      on: definition.on,
      steps: 2,
    });
    const full = await engine.request('GET', '/v1/workflows/sum-listed');
    expect(stored.createdAt).toBe(full.body.createdAt);
    expect(JSON.parse((await redis().hget(hashOf('sum-listed'), 's:1'))!).description).toBe('first');

    const listed = await engine.request('GET', '/v1/workflows');
    expect(listed.body.workflows).toContainEqual({ name: 'sum-listed', version: 2, description: 'second' });
  });

  it('are all that listing and matching read: a push and an event start only their workflow among many', async () => {
    const many = 30;
    for (let i = 0; i < many; i++) {
      const name = `sum-many-${String(i).padStart(2, '0')}`;
      await register({
        name,
        description: `workflow ${i}`,
        on: { push: { repository: `sum/app-${i}`, branches: ['main'] }, event: [`sum.event-${i}`] },
        steps: { a: { run: 'true' } },
      });
      // Every workflow but the two that match below: reading one of these whole would fail.
      if (i !== 7 && i !== 11) await spoil(name, 1);
    }

    const listed = await engine.request('GET', '/v1/workflows');
    expect(listed.status).toBe(200);
    expect(listed.body.workflows).toContainEqual({
      name: 'sum-many-03',
      version: 1,
      description: 'workflow 3',
    });
    const triggers = await engine.request('GET', '/v1/triggers');
    expect(triggers.status).toBe(200);
    expect(triggers.body.triggers).toContainEqual({
      workflow: 'sum-many-03',
      version: 1,
      type: 'event',
      event: 'sum.event-3',
    });

    const none = await push('sum/nobody');
    expect(none.status).toBe(202);
    expect(none.body.runs).toEqual([]);
    const one = await push('sum/app-7');
    expect(one.status).toBe(202);
    expect(startedNames(one.body)).toEqual(['sum-many-07']);

    const event = await engine.request('POST', '/v1/events/sum.event-11', { payload: {} });
    expect(event.status).toBe(202);
    expect(startedNames(event.body)).toEqual(['sum-many-11']);
    const unheard = await engine.request('POST', '/v1/events/sum.unheard', { payload: {} });
    expect(unheard.status).toBe(202);
    expect(unheard.body.runs).toEqual([]);
    expect((await engine.request('GET', '/healthz')).status).toBe(200);

    // The path that launches does read the version whole: a spoiled one that matches fails.
    const spoiled = await push('sum/app-3');
    expect(spoiled.status).toBe(500);
  });

  it('launch the version that matched, not one registered since', async () => {
    const definition = {
      name: 'sum-versioned',
      on: { push: { repository: 'sum/versioned' } },
      steps: { a: { run: 'true' } },
    };
    await register(definition);
    expect(await register({ ...definition, on: { push: { repository: 'sum/elsewhere' } } })).toBe(2);
    expect((await push('sum/versioned')).body.runs).toEqual([]);
    const moved = await push('sum/elsewhere');
    expect(moved.body.runs).toEqual([
      expect.objectContaining({ workflow: { name: 'sum-versioned', version: 2 } }),
    ]);
  });

  it('are built from a version stored before summaries were, written back once, and dropped with the workflow', async () => {
    // A version written as registration wrote it before summaries: no `s:1`.
    const definition = {
      name: 'sum-legacy',
      description: 'from before',
      on: { push: { repository: 'sum/legacy' }, event: ['sum.legacy'] },
      steps: { a: { run: 'true' }, b: { run: 'true' }, c: { run: 'true' } },
    };
    const workflow = validateDefinition(definition);
    const createdAt = '2026-01-02T03:04:05.000Z';
    await redis()
      .multi()
      .hset(hashOf('sum-legacy'), {
        'v:1': JSON.stringify({ createdAt, definition, workflow }),
        'hash:1': 'legacy',
        latest: '1',
      })
      .set(engine.api.deps.store.keys.workflowSeq('sum-legacy'), '1')
      .sadd(engine.api.deps.store.keys.workflows(), 'sum-legacy')
      .exec();
    expect(await redis().hexists(hashOf('sum-legacy'), 's:1')).toBe(0);

    const listed = await engine.request('GET', '/v1/workflows');
    expect(listed.body.workflows).toContainEqual({
      name: 'sum-legacy',
      version: 1,
      description: 'from before',
    });
    const summary = JSON.parse((await redis().hget(hashOf('sum-legacy'), 's:1'))!);
    expect(summary).toEqual({
      version: 1,
      name: 'sum-legacy',
      createdAt,
      description: 'from before',
      on: definition.on,
      steps: 3,
    });

    // Written back: matching no longer needs the version (spoiled here) to pick the workflow.
    await spoil('sum-legacy', 1);
    expect((await push('sum/nobody')).status).toBe(202);
    await redis().hset(hashOf('sum-legacy'), 'v:1', JSON.stringify({ createdAt, definition, workflow }));
    expect(startedNames((await push('sum/legacy')).body)).toEqual(['sum-legacy']);
    const event = await engine.request('POST', '/v1/events/sum.legacy', { payload: {} });
    expect(startedNames(event.body)).toEqual(['sum-legacy']);

    // Registering again continues after it, with a summary of its own.
    expect(await register({ ...definition, description: 'after' })).toBe(2);
    expect(JSON.parse((await redis().hget(hashOf('sum-legacy'), 's:2'))!).description).toBe('after');

    expect((await engine.request('DELETE', '/v1/workflows/sum-legacy')).status).toBe(204);
    expect(await redis().exists(hashOf('sum-legacy'))).toBe(0);
    expect((await engine.request('GET', '/v1/workflows')).body.workflows).not.toContainEqual(
      expect.objectContaining({ name: 'sum-legacy' }),
    );
    // A write-back racing the DELETE does not bring the hash back.
    expect(await withScripts(redis()).storeSummary(hashOf('sum-legacy'), 2, '{"version":2}')).toBe(0);
    expect(await redis().exists(hashOf('sum-legacy'))).toBe(0);
    expect((await push('sum/legacy')).body.runs).toEqual([]);
  });
});
