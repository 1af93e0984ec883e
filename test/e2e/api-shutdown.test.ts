/**
 * The API's graceful stop, on a real `conveyor api` process: on SIGTERM every open event stream
 * gets a last comment telling its client to reconnect with Last-Event-ID and ends, the listener
 * closes, and the process exits 0 without waiting for the streams' clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { type ConveyorProcess, spawnConveyor } from '../support/process.ts';
import { freePort } from '../support/redis-server.ts';

const prefix = testPrefix(import.meta.url);
let api: ConveyorProcess;
let base: string;

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  api = spawnConveyor('api', { REDIS_URL: redisUrl(), CONVEYOR_PREFIX: prefix, PORT: String(port) });
  await api.line(/API listening/);
});

afterAll(async () => {
  await api?.stop();
  await dropPrefix(redisUrl(), prefix);
});

/** An open SSE response: the text so far, and a promise of the whole text once it ends. */
async function openStream(runId: string) {
  const res = await fetch(`${base}/v1/runs/${runId}/events`, { headers: { accept: 'text/event-stream' } });
  expect(res.status).toBe(200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  const waiters: Array<() => void> = [];
  const ended = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += value;
      for (const wake of waiters.splice(0)) wake();
    }
  })();
  const received = (needle: string) =>
    new Promise<void>((resolve) => {
      const check = () => (text.includes(needle) ? resolve() : waiters.push(check));
      check();
    });
  return { ended, received };
}

describe('SIGTERM on the API', () => {
  it('ends every open event stream with a reconnect comment, stops listening and exits 0', async () => {
    // No worker: the run stays queued, so its streams stay open until the server stops.
    const res = await fetch(`${base}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: { name: 'held', steps: { a: { run: 'true' } } } }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const streams = [await openStream(id), await openStream(id)];
    await Promise.all(streams.map((s) => s.received('event: run.queued')));

    api.child.kill('SIGTERM');
    const texts = await Promise.all(streams.map((s) => s.ended));
    for (const text of texts) {
      expect(text).toContain('event: run.queued');
      expect(text.endsWith(': server shutting down, reconnect with Last-Event-ID\n\n')).toBe(true);
    }
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      api.exited,
      new Promise((resolve) => {
        timer = setTimeout(() => resolve('still running after 10 s'), 10_000);
      }),
    ]);
    clearTimeout(timer);
    expect(code).toBe(0);
    expect(api.output()).toMatch(/"signal":"SIGTERM"/);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});
