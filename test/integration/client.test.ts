/**
 * The typed client (src/client) against a real API on a socket and a real worker: every resource
 * call, errors as `ConveyorApiError`, responses that fit the documented schemas, and `runs.follow`
 * across an API restart on the same port: nothing missed, nothing repeated.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { parseTokens } from '../../src/api/auth/index.ts';
import { responseSchemas } from '../../src/api/openapi/index.ts';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { ConveyorApiError, createConveyorClient, type RunEvent } from '../../src/client/index.ts';
import { generateSecretKey, parseSecretKey } from '../../src/secrets/index.ts';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { type ConveyorWorker, startWorker } from '../../src/workers/worker.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

const prefix = testPrefix(import.meta.url);
const logger = pino({ level: 'silent' });
const TOKEN = 'admin-token-0123456789';
const apiOptions = {
  redisUrl: redisUrl(),
  prefix,
  logger,
  tokens: parseTokens(TOKEN, 'CONVEYOR_API_TOKENS'),
  secretKey: parseSecretKey(generateSecretKey()),
};
let api: ConveyorApi;
let worker: ConveyorWorker;
let client: ReturnType<typeof createConveyorClient>;

beforeAll(async () => {
  api = await startApi({ ...apiOptions, port: 0 });
  worker = await startWorker({ redisUrl: redisUrl(), prefix, executors: [new LocalExecutor()], logger });
  client = createConveyorClient({ baseUrl: api.url!, token: TOKEN });
});
afterAll(async () => {
  await worker.close();
  await api.close();
  await dropPrefix(redisUrl(), prefix);
});

/** The value as the documented schema reads it: a field the schema lacks would be missing. */
function documented<T>(schema: z.ZodType<T>, value: unknown): T {
  return schema.parse(value);
}

async function drain(events: AsyncIterable<RunEvent>): Promise<RunEvent[]> {
  const out: RunEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

describe('client', () => {
  it('registers, starts, reads, lists, logs, retries and cancels runs', async () => {
    const definition = {
      name: 'client-hello',
      inputs: { who: { default: 'world' } },
      steps: { hi: { run: 'echo "hi ${{ inputs.who }}"' } },
    };
    expect(await client.workflows.register(definition)).toEqual({
      name: 'client-hello',
      version: 1,
      created: true,
    });
    expect(await client.workflows.register(definition)).toMatchObject({ version: 1, created: false });
    const yaml = 'name: client-hello\nsteps:\n  hi: { run: echo "hi yaml" }\n';
    expect(await client.workflows.register(yaml)).toMatchObject({ version: 2, created: true });
    expect(await client.workflows.list()).toContainEqual({ name: 'client-hello', version: 2 });
    expect((await client.workflows.get('client-hello', 1)).definition).toEqual(definition);

    const plan = await client.workflows.plan('client-hello');
    expect(documented(responseSchemas.PlanSchema, plan)).toEqual(plan);
    const started = await client.workflows.start('client-hello', { idempotencyKey: 'k1' });
    expect((await client.workflows.start('client-hello', { idempotencyKey: 'k1' })).id).toBe(started.id);
    const events = await drain(client.runs.follow(started.id));
    expect(events.at(-1)!.event).toBe('run.succeeded');

    const run = await client.runs.get(started.id);
    expect(documented(responseSchemas.RunSchema, run)).toEqual(run);
    expect(run.steps.hi!.status).toBe('succeeded');
    expect(await client.runs.logs(started.id, 'hi')).toContain('hi yaml');
    const page = await client.runs.list({ workflow: 'client-hello', limit: '5' });
    expect(documented(responseSchemas.RunListSchema, page)).toEqual(page);
    expect(page.runs.map((r) => r.id)).toContain(started.id);

    const cancelled = await client.runs.cancel(started.id).catch((err) => err);
    expect(cancelled).toBeInstanceOf(ConveyorApiError);
    expect(cancelled).toMatchObject({ status: 409, code: 'conflict' });
    const retried = await client.runs.retry(started.id);
    expect(retried.id).not.toBe(started.id);
    expect((await drain(client.runs.follow(retried.id))).at(-1)!.event).toBe('run.succeeded');

    const adHoc = await client.runs.create({
      workflow: { name: 'client-adhoc', steps: { a: { run: 'true' } } },
    });
    expect(adHoc.workflow).toEqual({ name: 'client-adhoc', version: null });
    const adHocPlan = await client.runs.plan({
      workflow: { name: 'client-adhoc', steps: { a: { run: 'true' } } },
    });
    expect(documented(responseSchemas.PlanSchema, adHocPlan)).toEqual(adHocPlan);
    await client.workflows.delete('client-hello');
    await expect(client.workflows.get('client-hello')).rejects.toMatchObject({
      status: 404,
      code: 'not_found',
    });
  });

  it('reports bad input with the issues the API names', async () => {
    const err = await client.workflows
      .register({ name: 'client-bad', steps: { a: { needs: ['missing'], run: 'true' } } })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ConveyorApiError);
    expect(err.status).toBe(400);
    expect(err.issues).toContainEqual(expect.objectContaining({ path: 'steps.a.needs[0]' }));
    const anonymous = createConveyorClient({ baseUrl: api.url! });
    await expect(anonymous.runs.list()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('publishes events and lists workers and triggers', async () => {
    await client.workflows.register({
      name: 'client-on-event',
      on: { event: ['client.ping'] },
      steps: { a: { run: 'true' } },
    });
    const published = await client.events.publish('client.ping', { payload: { n: 1 } });
    expect(published.runs).toHaveLength(1);
    expect(published.runs[0]!.workflow.name).toBe('client-on-event');
    expect((await drain(client.runs.follow(published.runs[0]!.id))).at(-1)!.event).toBe('run.succeeded');
    expect(await client.triggers.list()).toContainEqual(
      expect.objectContaining({ workflow: 'client-on-event', type: 'event' }),
    );
    const [worker] = await client.workers.list();
    expect(worker).toMatchObject({
      executors: expect.arrayContaining(['local']),
      slots: { total: expect.any(Number) },
    });
    await client.workflows.delete('client-on-event');
  });

  it('manages hosts and secrets', async () => {
    await client.secrets.put('CLIENT_KEY', 'not really a key');
    expect(await client.secrets.list()).toContain('CLIENT_KEY');
    const host = { address: '127.0.0.1', port: 1, user: 'deploy', auth: { secret: 'CLIENT_KEY' } };
    const stored = await client.hosts.put('client-web', host);
    expect(documented(responseSchemas.HostStoredSchema, stored)).toEqual(stored);
    expect(await client.hosts.get('client-web')).toMatchObject({ name: 'client-web', port: 1, groups: [] });
    expect((await client.hosts.list()).map((h) => h.name)).toContain('client-web');
    const check = await client.hosts.check('client-web');
    expect(documented(responseSchemas.HostCheckSchema, check)).toEqual(check);
    expect(check.reachable).toBe(false);
    await client.hosts.delete('client-web');
    await client.secrets.delete('CLIENT_KEY');
    expect(await client.secrets.list()).not.toContain('CLIENT_KEY');
  });

  it('runs.follow resumes across an API restart on the same port: nothing missed, nothing repeated', async () => {
    const steps: Record<string, { needs: string[]; run: string }> = {};
    for (let i = 0; i < 5; i++)
      steps[`s${i}`] = { needs: i ? [`s${i - 1}`] : [], run: `echo step ${i}; sleep 0.1` };
    const run = await client.runs.create({ workflow: { name: 'client-follow', steps } });
    const port = api.port!;
    const reconnects: Array<string | undefined> = [];
    const seen: RunEvent[] = [];
    let restarted: Promise<void> | undefined;
    for await (const event of client.runs.follow(run.id, { onReconnect: (id) => reconnects.push(id) })) {
      seen.push(event);
      if (!restarted && event.event === 'step.started' && event.data.step === 's1') {
        // Mid-run: the API goes away under the open stream and a new one takes the same port.
        restarted = api.close().then(async () => {
          api = await startApi({ ...apiOptions, port });
        });
      }
    }
    await restarted;
    expect(reconnects.length).toBeGreaterThan(0);
    const stored = await api.deps.store.readEvents(run.id);
    expect(seen.map((e) => e.id)).toEqual(stored.map((e) => e.id));
    expect(seen.at(-1)!.event).toBe('run.succeeded');
    for (const event of seen)
      expect(event.data).toMatchObject({ id: event.id, runId: run.id, type: event.event });
  });

  it('runs.follow starts after lastEventId and ends quietly when aborted', async () => {
    const run = await client.runs.create({
      workflow: { name: 'client-abort', steps: { a: { run: 'sleep 30' } } },
    });
    const all: RunEvent[] = [];
    const controller = new AbortController();
    for await (const event of client.runs.follow(run.id, { signal: controller.signal })) {
      all.push(event);
      if (event.event === 'step.started') controller.abort();
    }
    expect(all.at(-1)!.event).toBe('step.started');
    const after = client.runs.follow(run.id, { lastEventId: all[0]!.id });
    const next = await after.next();
    expect(next.value).toEqual(all[1]);
    await after.return();
    await client.runs.cancel(run.id);
    expect((await drain(client.runs.follow(run.id))).at(-1)!.event).toBe('run.cancelled');
    // An error that asking again cannot fix ends the iterator with it, without retrying.
    await expect(drain(client.runs.follow('run_missing'))).rejects.toMatchObject({
      status: 404,
      code: 'not_found',
    });
  });
});
