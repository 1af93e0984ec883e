import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventRecord, MAX_EVENT_DEPTH } from '../../src/triggers/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url));
});
afterAll(async () => engine.close());

async function register(definition: Record<string, unknown>) {
  const res = await engine.request('POST', '/v1/workflows', definition);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

/** Follows the log of events (a stream) until a record matches: awaits, never polls. */
async function nextRecord(match: (record: EventRecord) => boolean): Promise<EventRecord> {
  const redis = new Redis(engine.redisUrl);
  const key = engine.api.deps.store.keys.eventLog();
  let last = '0';
  try {
    for (;;) {
      const reply = (await redis.xread('BLOCK', 5000, 'STREAMS', key, last)) as Array<
        [string, Array<[string, string[]]>]
      > | null;
      for (const [id, fields] of reply?.[0]?.[1] ?? []) {
        last = id;
        const record = JSON.parse(fields[1]!) as EventRecord;
        if (match(record)) return record;
      }
    }
  } finally {
    redis.disconnect();
  }
}

describe('POST /v1/events/:type', () => {
  it('starts every workflow subscribed to the type, once per idempotency key', async () => {
    const echo = { steps: { a: { run: 'echo "v=${{ trigger.payload.version }}" >> "$CONVEYOR_OUTPUT"' } } };
    await register({ name: 'fan-one', on: { event: ['artifact.published'] }, ...echo });
    await register({ name: 'fan-two', on: { event: ['other', 'artifact.published'] }, ...echo });
    await register({ name: 'fan-not', on: { event: ['artifact.deleted'] }, ...echo });
    const res = await engine.request('POST', '/v1/events/artifact.published', {
      payload: { version: '1.2.3' },
      idempotencyKey: 'pub-1',
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ type: 'artifact.published', source: { type: 'http' }, depth: 1 });
    expect(res.body.runs.map((r: { workflow: { name: string } }) => r.workflow.name)).toEqual([
      'fan-one',
      'fan-two',
    ]);
    for (const started of res.body.runs) {
      const { run } = await engine.waitForRun(started.id);
      expect(run.status).toBe('succeeded');
      expect(run.steps.a!.outputs).toEqual({ v: '1.2.3' });
      expect(run.trigger).toEqual({
        type: 'event',
        event: 'artifact.published',
        payload: { version: '1.2.3' },
        source: { type: 'http' },
        depth: 1,
      });
    }
    const again = await engine.request('POST', '/v1/events/artifact.published', {
      payload: { version: '1.2.3' },
      idempotencyKey: 'pub-1',
    });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(res.body);
    const listed = await engine.request('GET', '/v1/events?limit=10');
    expect(listed.status).toBe(200);
    const mine = listed.body.events.filter((e: EventRecord) => e.id === res.body.id);
    expect(mine).toHaveLength(1);
    expect(mine[0].runs).toEqual(res.body.runs);
  });

  it('refuses a bad type in the URL and a bad body with their paths', async () => {
    const bad = await engine.request('POST', '/v1/events/-bad', {});
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toBe('type');
    const body = await engine.request('POST', '/v1/events/ok', { payload: 1, extra: true });
    expect(body.status).toBe(400);
    const limit = await engine.request('GET', '/v1/events?limit=0');
    expect(limit.status).toBe(400);
    expect(limit.body.error.issues[0].path).toBe('limit');
    const none = await engine.request('POST', '/v1/events/nobody.listens');
    expect(none.status).toBe(202);
    expect(none.body.runs).toEqual([]);
  });
});

describe('events emitted by steps', () => {
  it('start the subscribed workflow with the emitting run and step as source', async () => {
    await register({
      name: 'on-build',
      on: { event: ['build.done'] },
      steps: { use: { run: 'echo "artifact=${{ trigger.payload.artifact }}" >> "$CONVEYOR_OUTPUT"' } },
    });
    const producer = await engine.submit({
      name: 'producer',
      steps: {
        build: { run: `echo '{"type":"build.done","payload":{"artifact":"app.tgz"}}' >> "$CONVEYOR_EVENTS"` },
      },
    });
    const record = await nextRecord((r) => r.source.type === 'step' && r.source.runId === producer.id);
    expect(record).toMatchObject({
      type: 'build.done',
      source: { type: 'step', runId: producer.id, stepId: 'build' },
      depth: 1,
    });
    expect(record.runs.map((r) => r.workflow.name)).toEqual(['on-build']);
    const { run } = await engine.waitForRun(record.runs[0]!.id);
    expect(run.status).toBe('succeeded');
    expect(run.steps.use!.outputs).toEqual({ artifact: 'app.tgz' });
    expect(run.trigger).toMatchObject({ event: 'build.done', source: { runId: producer.id }, depth: 1 });
  });

  it(`cut a workflow that triggers itself after ${MAX_EVENT_DEPTH} nested runs, and count the cut`, async () => {
    await register({
      name: 'loop',
      on: { event: ['loop.tick'] },
      steps: {
        tick: {
          run: `echo "{\\"type\\":\\"loop.tick\\",\\"payload\\":{\\"depth\\":\${{ trigger.depth }}}}" >> "$CONVEYOR_EVENTS"`,
        },
      },
    });
    const cutsBefore = (await engine.request('GET', '/v1/events')).body.cut;
    const first = await engine.request('POST', '/v1/events/loop.tick', { payload: { depth: 0 } });
    expect(first.body.runs).toHaveLength(1);
    const cut = await nextRecord((r) => r.type === 'loop.tick' && r.cut !== undefined);
    expect(cut.depth).toBe(MAX_EVENT_DEPTH + 1);
    expect(cut.runs).toEqual([]);
    expect(cut.cut).toMatch(/16 nested runs/);
    expect(cut.source).toMatchObject({ type: 'step', stepId: 'tick' });
    // The run that emitted the refused event is the 16th of the chain.
    const last = await engine.request('GET', `/v1/runs/${(cut.source as { runId: string }).runId}`);
    expect(last.body.trigger.depth).toBe(MAX_EVENT_DEPTH);
    expect(last.body.trigger.payload).toEqual({ depth: MAX_EVENT_DEPTH - 1 });
    const runs = await engine.request('GET', '/v1/runs?workflow=loop&limit=100');
    expect(runs.body.runs).toHaveLength(MAX_EVENT_DEPTH);
    const listed = await engine.request('GET', '/v1/events?limit=100');
    expect(listed.body.cut).toBe(cutsBefore + 1);
    expect(listed.body.events.filter((e: EventRecord) => e.type === 'loop.tick')).toHaveLength(
      MAX_EVENT_DEPTH + 1,
    );
  });
});
