import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { type ConveyorWorker, startWorker } from '../../src/workers/worker.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { readSse } from '../support/sse.ts';
import { delivery, github } from '../support/webhooks.ts';

const prefix = testPrefix(import.meta.url);
let api: ConveyorApi;
let worker: ConveyorWorker;
let base: string;

beforeAll(async () => {
  const logger = pino({ level: 'silent' });
  api = await startApi({ redisUrl: redisUrl(), prefix, port: 0, logger, webhookSecrets: ['e2e-secret'] });
  worker = await startWorker({ redisUrl: redisUrl(), prefix, executors: [new LocalExecutor()], logger });
  base = `http://127.0.0.1:${api.port}`;
});
afterAll(async () => {
  await worker.close();
  await api.close();
  await dropPrefix(redisUrl(), prefix);
});

describe('a signed GitHub push over HTTP', () => {
  it('starts the matching workflow, whose SSE stream ends with run.succeeded', async () => {
    const definition = {
      name: 'on-push',
      on: { push: { repository: 'Codertocat/Hello-World', branches: ['master'], paths: ['*.md'] } },
      steps: {
        build: {
          run: 'echo "sha=${{ trigger.after }}" >> "$CONVEYOR_OUTPUT"; echo "by ${{ trigger.pusher.name }}"',
        },
      },
    };
    const registered = await fetch(`${base}/v1/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(definition),
    });
    expect(registered.status).toBe(201);

    const payload = github.branchPush();
    const d = delivery('github', payload, { secret: 'e2e-secret' });
    const res = await fetch(`${base}/v1/hooks/github`, { method: 'POST', headers: d.headers, body: d.body });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { runs: Array<{ id: string; workflow: { name: string } }> };
    expect(body.runs.map((r) => r.workflow.name)).toEqual(['on-push']);

    const { messages, ended } = await readSse(`${base}/v1/runs/${body.runs[0]!.id}/events`);
    expect(ended).toBe(true);
    expect(messages.at(-1)!.event).toBe('run.succeeded');
    const run = (await (await fetch(`${base}/v1/runs/${body.runs[0]!.id}`)).json()) as {
      steps: { build: { outputs: Record<string, string> } };
      trigger: Record<string, unknown>;
    };
    expect(run.steps.build.outputs).toEqual({ sha: payload.after });
    expect(run.trigger).toMatchObject({ type: 'push', provider: 'github', branch: 'master' });
    const logs = await (await fetch(`${base}/v1/runs/${body.runs[0]!.id}/steps/build/logs`)).text();
    expect(logs).toBe('by Codertocat\n');
  });
});
