import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { type ConveyorWorker, startWorker } from '../../src/workers/worker.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { readSse } from '../support/sse.ts';

const prefix = testPrefix(import.meta.url);
let api: ConveyorApi;
let worker: ConveyorWorker;
let base: string;

beforeAll(async () => {
  const logger = pino({ level: 'silent' });
  api = await startApi({ redisUrl: redisUrl(), prefix, port: 0, logger });
  worker = await startWorker({ redisUrl: redisUrl(), prefix, executors: [new LocalExecutor()], logger });
  base = `http://127.0.0.1:${api.port}`;
});
afterAll(async () => {
  await worker.close();
  await api.close();
  await dropPrefix(redisUrl(), prefix);
});

describe('GET /v1/runs/:id/events', () => {
  it('resumes with Last-Event-ID after a mid-run disconnect without missing or repeating an event', async () => {
    const steps: Record<string, unknown> = {};
    for (let i = 0; i < 6; i++)
      steps[`s${i}`] = { needs: i ? [`s${i - 1}`] : [], run: `echo step ${i}; sleep 0.05` };
    const res = await fetch(`${base}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: { name: 'sse', steps } }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };

    // Leave while the run is still going: after s1 starts.
    const first = await readSse(`${base}/v1/runs/${id}/events`, {
      stop: (m) => m.event === 'step.started' && JSON.parse(m.data).step === 's1',
    });
    expect(first.ended).toBe(false);
    const second = await readSse(`${base}/v1/runs/${id}/events`, { lastEventId: first.messages.at(-1)!.id });
    expect(second.ended).toBe(true);

    const all = [...first.messages, ...second.messages];
    const stored = await api.deps.store.readEvents(id);
    expect(all.map((m) => m.id)).toEqual(stored.map((e) => e.id));
    expect(all.at(-1)!.event).toBe('run.succeeded');
    for (const m of all) {
      const data = JSON.parse(m.data);
      expect(data.runId).toBe(id);
      expect(data.type).toBe(m.event);
      expect(typeof data.at).toBe('string');
    }

    // A client arriving after the end gets the whole replay and the stream closes.
    const late = await readSse(`${base}/v1/runs/${id}/events`);
    expect(late.ended).toBe(true);
    expect(late.messages.map((m) => m.id)).toEqual(stored.map((e) => e.id));

    // What every EventSource does once the server closes: resume after the terminal event.
    // The stream ends at once with nothing (a hang here would time the test out).
    const resumed = await readSse(`${base}/v1/runs/${id}/events`, { lastEventId: stored.at(-1)!.id });
    expect(resumed).toEqual({ messages: [], ended: true });
    expect(api.deps.events.followers).toBe(0);
  });

  it('rejects a malformed Last-Event-ID with 400, and an unknown run with 404', async () => {
    const created = await fetch(`${base}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: { name: 'sse-bad-id', steps: { a: { run: 'true' } } } }),
    });
    const { id } = (await created.json()) as { id: string };
    const bad = await fetch(`${base}/v1/runs/${id}/events`, { headers: { 'last-event-id': 'nope' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { issues: Array<{ path: string }> } }).error.issues[0]!.path).toBe(
      'Last-Event-ID',
    );
    const unknown = await fetch(`${base}/v1/runs/run_unknown/events`);
    expect(unknown.status).toBe(404);
  });
});
