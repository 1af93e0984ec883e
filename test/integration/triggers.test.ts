import { Job, Queue } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/flows/index.ts';
import { bullPrefix } from '../../src/store/index.ts';
import { createTickProcessor, type TickData } from '../../src/triggers/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
let schedules: Queue;
beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
  schedules = new Queue(QUEUES.schedule, {
    connection: { url: redisUrl() },
    prefix: bullPrefix(engine.prefix),
  });
});
afterAll(async () => {
  await schedules.close();
  await engine.close();
});

const YAML = { 'content-type': 'application/yaml' };

const nightly = `
name: nightly
on:
  push: { repository: acme/app, branches: [main] }
  schedule:
    - { cron: "0 3 * * *", timezone: Europe/Paris }
    - { cron: "30 4 * * 1-5" }
  event: [artifact.published]
steps:
  build: { run: make }
`;

describe('trigger registration', () => {
  it('lists every trigger of the latest version with what it matches, and its schedulers with the next tick', async () => {
    expect((await engine.request('POST', '/v1/workflows', nightly, YAML)).status).toBe(201);
    const res = await engine.request('GET', '/v1/triggers');
    expect(res.status).toBe(200);
    const triggers = res.body.triggers as Array<Record<string, unknown>>;
    expect(triggers.map(({ nextAt, schedulerId, ...rest }) => rest)).toEqual([
      { workflow: 'nightly', version: 1, type: 'push', repository: 'acme/app', branches: ['main'] },
      { workflow: 'nightly', version: 1, type: 'schedule', cron: '0 3 * * *', timezone: 'Europe/Paris' },
      { workflow: 'nightly', version: 1, type: 'schedule', cron: '30 4 * * 1-5', timezone: 'UTC' },
      { workflow: 'nightly', version: 1, type: 'event', event: 'artifact.published' },
    ]);
    const [paris, weekdays] = triggers.filter((t) => t.type === 'schedule');
    // 03:00 in Paris is 02:00 UTC in winter, 01:00 in summer.
    expect(new Date(paris!.nextAt as string).getUTCHours()).toBeOneOf([1, 2]);
    expect(new Date(weekdays!.nextAt as string).getUTCMinutes()).toBe(30);

    const schedulers = await schedules.getJobSchedulers();
    expect(schedulers.map((s) => [s.key, s.pattern, s.tz]).sort()).toEqual(
      [
        [paris!.schedulerId, '0 3 * * *', 'Europe/Paris'],
        [weekdays!.schedulerId, '30 4 * * 1-5', 'UTC'],
      ].sort(),
    );
    // One delayed job per scheduler: its next tick.
    expect(await schedules.getDelayedCount()).toBe(2);
  });

  it('replaces the schedules with a new version: kept entries keep their scheduler, changed ones are replaced', async () => {
    const before = new Map((await schedules.getJobSchedulers()).map((s) => [s.pattern, s.key]));
    const v2 = nightly
      .replace('"30 4 * * 1-5"', '"15 5 * * *"')
      .replace('  push: { repository: acme/app, branches: [main] }\n', '');
    const res = await engine.request('POST', '/v1/workflows', v2, YAML);
    expect(res.body).toEqual({ name: 'nightly', version: 2 });
    const after = new Map((await schedules.getJobSchedulers()).map((s) => [s.pattern, s.key]));
    expect([...after.keys()].sort()).toEqual(['0 3 * * *', '15 5 * * *']);
    expect(after.get('0 3 * * *')).toBe(before.get('0 3 * * *'));
    expect(await schedules.getDelayedCount()).toBe(2);
    const listed = (await engine.request('GET', '/v1/triggers')).body.triggers as Array<
      Record<string, unknown>
    >;
    expect(listed.map((t) => [t.version, t.type, t.cron ?? t.event])).toEqual([
      [2, 'schedule', '0 3 * * *'],
      [2, 'schedule', '15 5 * * *'],
      [2, 'event', 'artifact.published'],
    ]);
  });

  it('removes the triggers and the schedulers with the workflow', async () => {
    expect((await engine.request('DELETE', '/v1/workflows/nightly')).status).toBe(204);
    expect((await engine.request('GET', '/v1/triggers')).body).toEqual({ triggers: [] });
    expect(await schedules.getJobSchedulersCount()).toBe(0);
    expect(await schedules.getDelayedCount()).toBe(0);
  });

  it('refuses a cron that does not parse with a 400 naming its path, JSON or YAML, and registers nothing', async () => {
    const json = await engine.request('POST', '/v1/workflows', {
      name: 'bad-cron',
      on: { schedule: [{ cron: 'every five minutes' }] },
      steps: { a: { run: 'true' } },
    });
    expect(json.status).toBe(400);
    expect(json.body.error.code).toBe('invalid_input');
    expect(json.body.error.issues).toEqual([
      {
        path: 'on.schedule[0].cron',
        message: expect.stringContaining('"every five minutes" is not a cron expression'),
      },
    ]);
    const text =
      'name: bad-tz\non:\n  schedule: [{ cron: "0 3 * * *", timezone: Moon/Base }]\nsteps:\n  a: { run: "true" }\n';
    const fromYaml = await engine.request('POST', '/v1/workflows', text, YAML);
    expect(fromYaml.status).toBe(400);
    expect(fromYaml.body.error.issues.map((i: { path: string }) => i.path)).toEqual([
      'on.schedule[0].timezone',
    ]);
    expect((await engine.request('GET', '/v1/workflows/bad-cron')).status).toBe(404);
    expect(await schedules.getJobSchedulersCount()).toBe(0);
  });

  it('syncs schedulers at API start: a workflow whose schedulers are missing gets them back, a deleted one loses its', async () => {
    const text = 'name: resync\non:\n  schedule: [{ cron: "0 3 * * *" }]\nsteps:\n  a: { run: "true" }\n';
    await engine.request('POST', '/v1/workflows', text, YAML);
    const [scheduler] = await schedules.getJobSchedulers();
    // As if the registering process died before it synced, and a deleting one before it did.
    await schedules.removeJobScheduler(scheduler!.key);
    await schedules.upsertJobScheduler('ghost.0123456789abcdef', { pattern: '0 4 * * *' }, { name: 'ghost' });
    await engine.api.deps.schedules.syncAll();
    expect((await schedules.getJobSchedulers()).map((s) => s.key)).toEqual([scheduler!.key]);
    await engine.request('DELETE', '/v1/workflows/resync');
  });

  it('starts one run per tick even when the tick job is processed twice (a stalled processor)', async () => {
    const text = 'name: twice\non:\n  schedule: [{ cron: "0 3 * * *" }]\nsteps:\n  a: { run: "true" }\n';
    await engine.request('POST', '/v1/workflows', text, YAML);
    const [scheduler] = await schedules.getJobSchedulers();
    // The scheduler's pending tick job, as BullMQ made it.
    const job = (await Job.fromId<TickData>(schedules, `repeat:${scheduler!.key}:${scheduler!.next}`))!;
    const { deps } = engine.api;
    const processTick = createTickProcessor({
      workflows: deps.workflows,
      queue: schedules as Queue<TickData>,
      launch: (request) => deps.launcher.launch(request),
      logger: pino({ level: 'silent' }),
    });
    const first = await processTick(job);
    const second = await processTick(job);
    expect(first.runId).toMatch(/^run_/);
    expect(second.runId).toBe(first.runId);
    const runs = (await engine.request('GET', '/v1/runs?workflow=twice')).body.runs;
    expect(runs).toHaveLength(1);
    expect(runs[0].trigger).toEqual({
      type: 'schedule',
      cron: '0 3 * * *',
      timezone: 'UTC',
      scheduledAt: new Date(scheduler!.next!).toISOString(),
    });

    // After the workflow is gone, a tick still queued starts nothing and drops its scheduler.
    await deps.workflows.delete('twice');
    expect(await processTick(job)).toEqual({ skipped: 'the workflow no longer has this schedule' });
    expect(await schedules.getJobSchedulersCount()).toBe(0);
  });
});
