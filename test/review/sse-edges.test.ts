/**
 * Review of issue 8 (SSE): a stream must end after the run's terminal event whatever
 * `Last-Event-ID` the client sends, and an id Redis cannot read is a 400, not a 200 that closes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url));
});
afterAll(async () => {
  await engine.close();
});

/** Reads the SSE body to its end; returns the text. */
async function readToEnd(res: Response): Promise<string> {
  let text = '';
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text;
    text += value;
  }
}

describe('SSE edges (review 8)', () => {
  it('a stream resumed from an id past every event of a running run ends when the run ends', async () => {
    const run = await engine.submit({ name: 'future-id', steps: { wait: { run: 'sleep 1' } } });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.started');
    const controller = new AbortController();
    const res = await engine.api.app.request(`/v1/runs/${run.id}/events`, {
      headers: { 'last-event-id': '99999999999999-0' },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    // The run is over: the stream must end (it stayed open with keep-alives forever). A resume id
    // past every event is taken as "seen all so far": what comes after it is sent, the end included.
    const text = await readToEnd(res);
    expect(text).not.toContain('event: step.started');
    expect(text).toContain('event: run.succeeded');
  }, 15_000);

  it('an event id Redis cannot parse is a 400 naming Last-Event-ID', async () => {
    const run = await engine.submit({ name: 'bad-id', steps: { quick: { run: 'true' } } });
    await engine.waitForRun(run.id);
    const res = await engine.api.app.request(`/v1/runs/${run.id}/events`, {
      headers: { 'last-event-id': '99999999999999999999999-0' },
    });
    const body = await res.text();
    expect(res.status).toBe(400);
    expect(body).toContain('Last-Event-ID');
  });
});
