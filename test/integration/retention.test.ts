import { rmSync, writeFileSync } from 'node:fs';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepJobsLike } from '../../src/flows/index.ts';
import { bullPrefix } from '../../src/store/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

const RETENTION_S = 3600;
let engine: TestEngine;
let redis: Redis;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    // No periodic pass: each test runs one with the `now` it needs. Batches of 2 so a pass
    // over a few runs takes several.
    api: { retentionSeconds: RETENTION_S, retentionPass: { intervalMs: 0, batchSize: 2 } },
  });
  redis = new Redis(engine.redisUrl);
});
afterAll(async () => {
  redis.disconnect();
  await engine.close();
});

/**
 * A diamond (so a gate job exists) whose step `flaky` fails its first attempt (so two attempt
 * logs exist), every step printing a line (so every attempt has a log key).
 */
const diamond = (name: string) => ({
  name,
  steps: {
    a: { run: 'echo a' },
    flaky: {
      needs: ['a'],
      run: 'echo try; test -f flaky.done || { touch flaky.done; exit 1; }',
      retries: { attempts: 2, delay: '10ms' },
    },
    c: { needs: ['a'], run: 'echo c' },
    d: { needs: ['flaky', 'c'], run: 'echo d' },
  },
});

/** Every key under the engine's prefix, minus BullMQ's queue-level bookkeeping that comes and goes. */
async function prefixKeys(): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${bullPrefix(engine.prefix)}*`, 'COUNT', 1000);
    cursor = next;
    out.push(...batch);
  } while (cursor !== '0');
  return out.filter((k) => !/:(stalled-check|marker)$/.test(k)).sort();
}

async function runToEnd(workflow: unknown, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await engine.request('POST', '/v1/runs', { workflow, ...extra });
  expect(res.status).toBe(202);
  const { run } = await engine.waitForRun(res.body.id);
  expect(run.status).toBe('succeeded');
  return run.id;
}

const pass = (inMs: number) => engine.api.retention.runOnce(Date.now() + inMs);

describe('retention', () => {
  it('expires a finished run with all its keys, index entries, idempotency key and jobs', async () => {
    // A first run creates the queues' own keys; once it is gone, what is left is the baseline.
    await runToEnd(diamond('keep'));
    expect((await pass(RETENTION_S * 1000 + 60_000)).removed).toBe(1);
    const baseline = await prefixKeys();

    const runId = await runToEnd(diamond('keep'), { idempotencyKey: 'once' });
    const own = (await prefixKeys()).filter((k) => k.includes(runId));
    const k = engine.api.deps.store.keys;
    const logs = ['a#1', 'flaky#1', 'flaky#2', 'c#1', 'd#1'].map((s) => `${k.run(runId)}:log:${s}`);
    expect(own).toEqual(expect.arrayContaining([k.run(runId), k.events(runId), ...logs]));
    // Every key of ours has the retention as its TTL, the idempotency key included.
    for (const key of [k.run(runId), k.events(runId), ...logs, k.idempotency('keep', 'once')]) {
      const ttl = await redis.ttl(key);
      expect(ttl, key).toBeGreaterThan(RETENTION_S - 120);
      expect(ttl, key).toBeLessThanOrEqual(RETENTION_S);
    }
    // Every job of the run is removed by BullMQ that long after it finishes.
    for (const [name, id] of [
      ['runs', runId],
      ['steps-local', `${runId}.a`],
      ['steps-local', `${runId}.d`],
      ['gates', `${runId}.gate.a.c`],
    ] as const) {
      const queue = new Queue(name, { connection: redis, prefix: bullPrefix(engine.prefix) });
      const job = await Job.fromId(queue, id);
      await queue.close();
      expect(job?.opts.removeOnComplete, id).toEqual({ age: RETENTION_S });
      expect(job?.opts.removeOnFail, id).toEqual({ age: RETENTION_S });
      // What a fan-out step copies from its own job (read back from Redis) to its instances.
      expect(keepJobsLike(job!.opts)).toEqual({
        removeOnComplete: { age: RETENTION_S },
        removeOnFail: { age: RETENTION_S },
      });
    }

    // Not due yet: nothing goes.
    expect((await pass(0)).removed).toBe(0);
    expect((await engine.request('GET', `/v1/runs/${runId}`)).status).toBe(200);

    expect(await pass(RETENTION_S * 1000 + 60_000)).toEqual({ ran: true, removed: 1, batches: 1 });
    expect(await prefixKeys()).toEqual(baseline);
    expect((await engine.request('GET', `/v1/runs/${runId}`)).status).toBe(404);
    const listed = await engine.request('GET', '/v1/runs?workflow=keep');
    expect(listed.body.runs).toEqual([]);
    // The key is free again: it starts a new run.
    const again = await engine.request('POST', '/v1/runs', {
      workflow: diamond('keep'),
      idempotencyKey: 'once',
    });
    expect(again.status).toBe(202);
    expect(again.body.id).not.toBe(runId);
    await engine.waitForRun(again.body.id);
    expect((await engine.request('DELETE', `/v1/runs/${again.body.id}`)).status).toBe(204);
  });

  it('trims the indexes and jobs of a run whose keys expired before the pass, and never revives it', async () => {
    const runId = await runToEnd(diamond('lapsed'));
    const k = engine.api.deps.store.keys;
    // What the TTLs do when no pass ran in time.
    await redis.del(k.run(runId), k.events(runId));
    expect((await engine.request('GET', `/v1/runs/${runId}`)).status).toBe(404);
    expect((await engine.request('GET', '/v1/runs?workflow=lapsed')).body.runs).toEqual([]);
    expect(await redis.zscore(k.runs(), runId)).not.toBeNull();

    expect((await pass(RETENTION_S * 1000 + 60_000)).removed).toBe(1);
    expect(await redis.zscore(k.runs(), runId)).toBeNull();
    expect(await redis.zscore(k.workflowRuns('lapsed'), runId)).toBeNull();
    expect(await redis.zcard(k.expiries())).toBe(0);
    // Its job tree went too; the logs had their own TTL.
    const left = (await prefixKeys()).filter((key) => key.includes(runId) && !key.includes(':log:'));
    expect(left).toEqual([]);
  });

  it('removes many expired runs in batches', async () => {
    const ids = await Promise.all(
      [1, 2, 3, 4, 5].map(() => runToEnd({ name: 'many', steps: { s: { run: 'true' } } })),
    );
    const result = await pass(RETENTION_S * 1000 + 60_000);
    expect(result).toEqual({ ran: true, removed: 5, batches: 3 });
    for (const id of ids) expect((await prefixKeys()).some((key) => key.includes(id))).toBe(false);
  });

  it('does nothing while another process holds the pass lock', async () => {
    const k = engine.api.deps.store.keys;
    await redis.set(k.retentionLock(), 'someone-else', 'PX', 10_000);
    try {
      expect(await pass(RETENTION_S * 1000 + 60_000)).toEqual({ ran: false, removed: 0, batches: 0 });
    } finally {
      await redis.del(k.retentionLock());
    }
  });
});

describe('DELETE /v1/runs/:id', () => {
  it('removes a finished run at once: no key of it is left', async () => {
    const runId = await runToEnd(diamond('gone'), { idempotencyKey: 'gone-1' });
    const res = await engine.request('DELETE', `/v1/runs/${runId}`);
    expect(res.status).toBe(204);
    expect(res.body).toBeUndefined();
    expect((await prefixKeys()).filter((key) => key.includes(runId))).toEqual([]);
    const k = engine.api.deps.store.keys;
    expect(await redis.exists(k.idempotency('gone', 'gone-1'))).toBe(0);
    expect(await redis.zscore(k.runs(), runId)).toBeNull();
    expect((await engine.request('GET', `/v1/runs/${runId}`)).status).toBe(404);
    const twice = await engine.request('DELETE', `/v1/runs/${runId}`);
    expect(twice.status).toBe(404);
    expect(twice.body.error.code).toBe('not_found');
  });

  it('refuses a running run with 409, then deletes it once cancelled', async () => {
    const res = await engine.request('POST', '/v1/runs', {
      workflow: { name: 'busy', steps: { wait: { run: 'sleep 30' } } },
    });
    const runId = res.body.id as string;
    await engine.waitForEvent(runId, (e) => e.type === 'step.started');
    const refused = await engine.request('DELETE', `/v1/runs/${runId}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('conflict');
    expect(refused.body.error.message).toContain('running');
    expect((await engine.request('GET', `/v1/runs/${runId}`)).status).toBe(200);

    await engine.request('POST', `/v1/runs/${runId}/cancel`);
    const { run } = await engine.waitForRun(runId);
    expect(run.status).toBe('cancelled');
    expect((await engine.request('DELETE', `/v1/runs/${runId}`)).status).toBe(204);
    expect((await prefixKeys()).filter((key) => key.includes(runId))).toEqual([]);
  });

  it('expires and deletes whole a run recorded with its meta alone (before the fields beside it)', async () => {
    // finish-run.lua and delete-run.lua read `workflow`, `retention` and `idempotencyKey` beside
    // the meta; a run announced by an earlier version has only the meta, which they decode.
    const gate = `/tmp/conveyor-retention-${process.pid}-${Date.now()}`;
    const res = await engine.request('POST', '/v1/runs', {
      workflow: {
        name: 'legacy',
        steps: {
          a: { run: `echo a; while [ ! -e ${gate} ]; do sleep 0.02; done` },
          b: { needs: ['a'], run: 'echo b' },
        },
      },
      idempotencyKey: 'legacy-key',
    });
    const runId = res.body.id as string;
    await engine.waitForEvent(runId, (e) => e.type === 'step.started');
    const k = engine.api.deps.store.keys;
    expect(await redis.hdel(k.run(runId), 'workflow', 'retention', 'idempotencyKey')).toBe(3);
    writeFileSync(gate, '');
    const { run } = await engine.waitForRun(runId);
    rmSync(gate, { force: true });
    expect(run.status).toBe('succeeded');
    const logs = ['a#1', 'b#1'].map((s) => `${k.run(runId)}:log:${s}`);
    for (const key of [k.run(runId), k.events(runId), ...logs, k.idempotency('legacy', 'legacy-key')]) {
      expect(await redis.ttl(key), key).toBeGreaterThan(RETENTION_S - 120);
    }
    expect(await redis.zscore(k.expiries(), `${runId}/legacy`)).not.toBeNull();

    expect((await engine.request('DELETE', `/v1/runs/${runId}`)).status).toBe(204);
    expect((await prefixKeys()).filter((key) => key.includes(runId))).toEqual([]);
    expect(await redis.exists(k.idempotency('legacy', 'legacy-key'))).toBe(0);
    expect(await redis.zscore(k.workflowRuns('legacy'), runId)).toBeNull();
  });

  it('answers 404 for an unknown run', async () => {
    const res = await engine.request('DELETE', '/v1/runs/run_nope');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: { code: 'not_found', message: 'no run "run_nope"' } });
  });
});

describe('BullMQ ages during a run', () => {
  it('a finished child removed by age mid-run breaks neither its parent nor its run', async () => {
    // Retention of 1 s: when `b` (a 1.5 s step) finishes, BullMQ drops `a`'s job, finished over
    // a second earlier, while `d` (which needs both, `a` through a gate) still waits.
    const short = await startEngine(redisUrl(), testPrefix(import.meta.url), {
      api: { retentionSeconds: 1, retentionPass: { intervalMs: 0 } },
    });
    try {
      const run = await short.submit({
        name: 'aged',
        steps: {
          a: { run: 'echo a' },
          b: { needs: ['a'], run: 'sleep 1.5' },
          d: { needs: ['a', 'b'], run: 'echo d' },
        },
      });
      // The record itself lives 1 s past the end: read the outcome from the events.
      const { events } = await short.waitForRun(run.id);
      const types = events.map((e) => `${e.type}${e.data.step ? `:${e.data.step}` : ''}`);
      expect(types).toContain('step.succeeded:d');
      expect(types.at(-1)).toBe('run.succeeded');
      const queue = new Queue('steps-local', { connection: redis, prefix: bullPrefix(short.prefix) });
      try {
        expect(await Job.fromId(queue, `${run.id}.a`)).toBeUndefined();
      } finally {
        await queue.close();
      }
    } finally {
      await short.close();
    }
  });
});
