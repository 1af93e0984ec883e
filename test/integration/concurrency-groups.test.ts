import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowProducer } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import type { RunMeta } from '../../src/flows/index.ts';
import { bullPrefix, GroupStore, type RunDocument } from '../../src/store/index.ts';
import { ADMISSION_GRACE_MS, releaseGroup } from '../../src/triggers/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
const dir = mkdtempSync(join(tmpdir(), 'conveyor-groups-'));
beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url));
});
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A step that runs until the test creates its gate file. */
const gated = (name: string, concurrency: unknown) => ({
  name,
  inputs: { env: { type: 'string', default: 'prod' }, gate: { type: 'string', default: '' } },
  concurrency,
  steps: { deploy: { run: 'while [ ! -e "${{ inputs.gate }}" ]; do sleep 0.05; done' } },
});

let gates = 0;
function gate(): { path: string; open(): void } {
  const path = join(dir, `gate-${gates++}`);
  return { path, open: () => writeFileSync(path, '') };
}

async function start(workflow: string, inputs: Record<string, unknown>): Promise<RunDocument> {
  const res = await engine.request('POST', `/v1/workflows/${workflow}/runs`, { inputs });
  expect(res.status).toBe(202);
  return res.body as RunDocument;
}

const started = (runId: string) => engine.waitForEvent(runId, (e) => e.type === 'step.started');
const hasFlow = async (runId: string) =>
  (await engine.api.deps.redis.exists(engine.api.deps.store.keys.rootJob(runId))) === 1;

describe('concurrency groups', () => {
  it('queues a newer run behind the running one and starts it when the first ends', async () => {
    await engine.request('POST', '/v1/workflows', gated('queue', { group: 'deploy-${{ inputs.env }}' }));
    const [gateA, gateB] = [gate(), gate()];
    const a = await start('queue', { gate: gateA.path });
    expect(a.concurrency).toEqual({ group: 'deploy-prod', cancelInProgress: false });
    await started(a.id);
    // Group names compare case-insensitively: `deploy-PROD` waits for `deploy-prod`.
    const b = await start('queue', { env: 'PROD', gate: gateB.path });
    // Another group is not held up.
    const other = await start('queue', { env: 'staging', gate: gateB.path });
    await started(other.id);

    // Waiting holds no job at all, so no worker slot.
    expect(await hasFlow(b.id)).toBe(false);
    expect((await engine.request('GET', `/v1/runs/${b.id}`)).body.status).toBe('queued');
    gateA.open();
    const first = await engine.waitForRun(a.id);
    expect(first.run.status).toBe('succeeded');
    await started(b.id);
    gateB.open();
    const second = await engine.waitForRun(b.id);
    expect(second.run.status).toBe('succeeded');
    expect(Date.parse(second.run.startedAt!)).toBeGreaterThanOrEqual(Date.parse(first.run.finishedAt!));
    await engine.waitForRun(other.id);
  });

  it('with cancelInProgress, a newer run cancels the running one and starts once it has ended', async () => {
    await engine.request(
      'POST',
      '/v1/workflows',
      gated('cancel', { group: 'deploy-${{ inputs.env }}', cancelInProgress: true }),
    );
    const [gateA, gateB] = [gate(), gate()];
    const a = await start('cancel', { gate: gateA.path });
    await started(a.id);
    const b = await start('cancel', { gate: gateB.path });
    const first = await engine.waitForRun(a.id);
    expect(first.run.status).toBe('cancelled');
    expect(first.run.steps.deploy!.status).toBe('cancelled');
    expect(first.run.cancelReason).toBe(
      `cancelled by run ${b.id} in concurrency group "deploy-prod" (cancelInProgress)`,
    );
    await started(b.id);
    gateB.open();
    const second = await engine.waitForRun(b.id);
    expect(second.run.status).toBe('succeeded');
    expect(Date.parse(second.run.startedAt!)).toBeGreaterThanOrEqual(Date.parse(first.run.finishedAt!));
  });

  it('keeps only the newest waiting run: of three quick runs the middle one is cancelled as superseded', async () => {
    await engine.request('POST', '/v1/workflows', gated('three', 'three-${{ inputs.env }}'));
    const [gateA, gateC] = [gate(), gate()];
    const a = await start('three', { gate: gateA.path });
    const b = await start('three', { gate: gateA.path });
    const c = await start('three', { gate: gateC.path });
    const middle = await engine.waitForRun(b.id);
    expect(middle.run.status).toBe('cancelled');
    expect(middle.run.cancelReason).toBe(`superseded by run ${c.id} in concurrency group "three-prod"`);
    expect(middle.run.steps.deploy!.status).toBe('cancelled');
    expect(middle.events.map((e) => e.type)).toEqual(['run.queued', 'step.queued', 'run.cancelled']);
    expect(middle.events.at(-1)!.data.reason).toBe(middle.run.cancelReason);
    expect(await hasFlow(b.id)).toBe(false);

    gateA.open();
    expect((await engine.waitForRun(a.id)).run.status).toBe('succeeded');
    await started(c.id);
    gateC.open();
    expect((await engine.waitForRun(c.id)).run.status).toBe('succeeded');
  });

  it('cancels a waiting run at once, and the group is free again when the holder ends', async () => {
    await engine.request('POST', '/v1/workflows', gated('withdraw', 'withdraw'));
    const [gateA, gateD] = [gate(), gate()];
    const a = await start('withdraw', { gate: gateA.path });
    const b = await start('withdraw', { gate: gateA.path });
    const res = await engine.request('POST', `/v1/runs/${b.id}/cancel`);
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('cancelled');
    expect(res.body.cancelReason).toBe('cancelled while waiting for its concurrency group');
    gateA.open();
    expect((await engine.waitForRun(a.id)).run.status).toBe('succeeded');
    // Nothing waits: the next run takes the group at once.
    const d = await start('withdraw', { gate: gateD.path });
    await started(d.id);
    gateD.open();
    expect((await engine.waitForRun(d.id)).run.status).toBe('succeeded');
  });

  it('a holder admitted without its flow (its API died in between) is started by the next run of the group', async () => {
    await engine.request('POST', '/v1/workflows', gated('repair', 'repair'));
    const found = (await engine.api.deps.workflows.get('repair'))!;
    const [gateA, gateB] = [gate(), gate()];
    const { store, redis } = engine.api.deps;
    const orphan: RunMeta = {
      id: `run_orphan${Date.now().toString(36)}`,
      workflow: { name: 'repair', version: found.version },
      definition: found.workflow,
      inputs: { env: 'prod', gate: gateA.path },
      trigger: { type: 'http' },
      createdAt: new Date().toISOString(),
      concurrency: { group: 'repair', cancelInProgress: false },
    };
    // What a dying API leaves: the run recorded and holding the group, its flow never added.
    await store.announce(orphan);
    expect((await new GroupStore(redis, store.keys).acquire('repair', orphan.id, false)).start).toBe(true);
    await redis.hset(store.keys.group('repair'), 'since', Date.now() - ADMISSION_GRACE_MS - 1000);
    expect(await hasFlow(orphan.id)).toBe(false);

    const b = await start('repair', { gate: gateB.path });
    await started(orphan.id);
    expect(await hasFlow(b.id)).toBe(false);
    gateA.open();
    expect((await engine.waitForRun(orphan.id)).run.status).toBe('succeeded');
    await started(b.id);
    gateB.open();
    expect((await engine.waitForRun(b.id)).run.status).toBe('succeeded');
  });

  it('hands the group on once: a repeated release changes nothing, a holder that ended unreleased frees it', async () => {
    await engine.request('POST', '/v1/workflows', gated('again', 'again'));
    const [gateA, gateB, gateC] = [gate(), gate(), gate()];
    const { store, redis } = engine.api.deps;
    const a = await start('again', { gate: gateA.path });
    const b = await start('again', { gate: gateB.path });
    gateA.open();
    await engine.waitForRun(a.id);
    await started(b.id);
    // a's finaliser again (BullMQ retrying it after it had released): b keeps the group.
    const flows = new FlowProducer({
      connection: { url: engine.redisUrl },
      prefix: bullPrefix(engine.prefix),
    });
    try {
      await releaseGroup({ store, flows }, (await store.snapshot(a.id, [], true)).meta!);
    } finally {
      await flows.close();
    }
    expect(await holderOf('again')).toBe(b.id);
    gateB.open();
    const second = await engine.waitForRun(b.id);
    expect(second.events.filter((e) => e.type === 'step.started')).toHaveLength(1);
    expect(await holderOf('again')).toBeNull();

    // A holder whose run ended but whose finaliser died before releasing does not block the group.
    await redis.hset(store.keys.group('again'), 'holder', a.id, 'since', Date.now());
    const c = await start('again', { gate: gateC.path });
    await started(c.id);
    gateC.open();
    expect((await engine.waitForRun(c.id)).run.status).toBe('succeeded');
  });

  it('holds across API processes: runs started at once through two APIs never overlap', async () => {
    const second: ConveyorApi = await startApi({
      redisUrl: engine.redisUrl,
      prefix: engine.prefix,
      logger: pino({ level: 'silent' }),
    });
    try {
      await engine.request('POST', '/v1/workflows', gated('race', 'race'));
      const open = gate();
      const apps = [engine.api.app, second.app];
      const runs = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const res = await apps[i % 2]!.request('/v1/workflows/race/runs', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ inputs: { gate: open.path } }),
          });
          return ((await res.json()) as RunDocument).id;
        }),
      );
      // The holder and the newest waiting run are left; every other one was superseded.
      const holder = await holderOf('race');
      open.open();
      const done = await Promise.all(runs.map((id) => engine.waitForRun(id)));
      const ran = done.filter((d) => d.run.status === 'succeeded').map((d) => d.run);
      const superseded = done.filter((d) => d.run.status === 'cancelled');
      expect(ran).toHaveLength(2);
      expect(ran.map((r) => r.id)).toContain(holder);
      expect(superseded).toHaveLength(8);
      for (const d of superseded) expect(d.run.cancelReason).toMatch(/^superseded by run run_/);
      const [x, y] = ran.sort((p, q) => Date.parse(p.startedAt!) - Date.parse(q.startedAt!));
      expect(Date.parse(y!.startedAt!)).toBeGreaterThanOrEqual(Date.parse(x!.finishedAt!));
    } finally {
      await second.close();
    }
  });
});

async function holderOf(group: string): Promise<string | null> {
  return engine.api.deps.redis.hget(engine.api.deps.store.keys.group(group), 'holder');
}
