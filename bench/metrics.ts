/**
 * Issue 9: what a `/metrics` scrape and `GET /v1/runs` cost with 100,000 finished runs kept in
 * Redis. The runs are written by the store's own scripts (record, events, listing indexes,
 * counters) plus a completed BullMQ job per run and per step, so the keys are the ones real runs
 * leave. The same scrape on an empty prefix, before seeding, is the peer: a scrape must not
 * grow with the number of runs. Target: a scrape under 50 ms.
 */
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { startApi } from '../src/api/server.ts';
import { QUEUES, type RunMeta, validateDefinition } from '../src/flows/index.ts';
import type { RedisClient } from '../src/redis-client.ts';
import { bullPrefix, type RunStore } from '../src/store/index.ts';
import { dropPrefix } from '../test/support/prefix.ts';
import { benchPrefix, percentile, round } from './support.ts';
import type { BenchContext, BenchRow, BenchSuite } from './types.ts';

// BENCH_METRICS_RUNS: a smaller size for a quick check of the suite itself.
const RUNS = Number(process.env.BENCH_METRICS_RUNS ?? 100_000);
const BATCH = 1000;

/** Writes `RUNS` finished runs of a two-step workflow, `BATCH` at a time. */
async function seed(store: RunStore, redis: RedisClient, prefix: string) {
  const definition = validateDefinition({
    name: 'retained',
    steps: { build: { run: 'make' }, test: { needs: ['build'], run: 'make test' } },
  });
  const base = Date.now() - RUNS * 10;
  const queue = (name: string) => `${bullPrefix(prefix)}:${name}`;
  for (let start = 0; start < RUNS; start += BATCH) {
    const batch: Promise<unknown>[] = [];
    const jobs = redis.pipeline();
    for (let i = start; i < Math.min(RUNS, start + BATCH); i++) {
      const id = `run_bench${String(i).padStart(8, '0')}`;
      const createdAt = new Date(base + i * 10).toISOString();
      const meta: RunMeta = {
        id,
        workflow: { name: 'retained', version: 1 },
        definition,
        inputs: {},
        trigger: { type: 'http' },
        createdAt,
      };
      const finishedAt = new Date(base + i * 10 + 5).toISOString();
      batch.push(
        (async () => {
          await store.announce(meta);
          for (const step of ['build', 'test']) {
            await store.transition({
              runId: id,
              stepId: step,
              status: 'succeeded',
              details: { executor: 'local', attempts: 1, exitCode: 0, startedAt: createdAt, finishedAt },
              event: { type: 'step.succeeded', step },
            });
          }
          await store.finish(id, i % 10 === 0 ? 'failed' : 'succeeded');
        })(),
      );
      const finishedOn = String(base + i * 10 + 5);
      jobs.hset(
        `${queue(QUEUES.run)}:${id}`,
        'name',
        'retained',
        'data',
        '{}',
        'opts',
        '{}',
        'timestamp',
        String(base + i * 10),
        'finishedOn',
        finishedOn,
        'returnvalue',
        '{}',
      );
      jobs.zadd(`${queue(QUEUES.run)}:completed`, finishedOn, id);
      for (const step of ['build', 'test']) {
        jobs.hset(
          `${queue(QUEUES.step('local'))}:${id}.${step}`,
          'name',
          `retained/${step}`,
          'data',
          JSON.stringify({ runId: id, workflow: 'retained', stepId: step, gates: [] }),
          'opts',
          '{}',
          'timestamp',
          String(base + i * 10),
          'finishedOn',
          finishedOn,
          'returnvalue',
          '{"status":"succeeded","exitCode":0}',
        );
        jobs.zadd(`${queue(QUEUES.step('local'))}:completed`, finishedOn, `${id}.${step}`);
      }
    }
    await Promise.all([...batch, jobs.exec()]);
  }
}

/** Times `n` sequential GETs of `url` (after 5 unmeasured ones); returns the times in ms. */
async function timeGets(url: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n + 5; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    await res.text();
    if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
    if (i >= 5) times.push(performance.now() - t0);
  }
  return times;
}

const suite: BenchSuite = {
  name: 'metrics',
  async run({ redisUrl }: BenchContext): Promise<BenchRow[]> {
    const prefix = benchPrefix('metrics');
    const api = await startApi({ redisUrl, prefix, port: 0, logger: pino({ level: 'silent' }) });
    const base = `http://127.0.0.1:${api.port}`;
    try {
      const empty = await timeGets(`${base}/metrics`, 50);
      const seeding = performance.now();
      await seed(api.deps.store, api.deps.redis, prefix);
      const seededMs = performance.now() - seeding;
      const scrape = await timeGets(`${base}/metrics`, 100);
      const list = await timeGets(`${base}/v1/runs`, 200);
      const filtered = await timeGets(`${base}/v1/runs?status=failed&limit=50`, 50);
      const keys = await api.deps.redis.dbsize();
      return [
        {
          metric: `/metrics scrape p50, ${RUNS} runs kept`,
          value: round(percentile(scrape, 50)),
          unit: 'ms',
          peer: 'same scrape, no runs',
          peerValue: round(percentile(empty, 50)),
          target: '≤ 50 ms',
        },
        {
          metric: `/metrics scrape p95, ${RUNS} runs kept`,
          value: round(percentile(scrape, 95)),
          unit: 'ms',
          peer: 'same scrape, no runs',
          peerValue: round(percentile(empty, 95)),
          target: '≤ 50 ms',
        },
        { metric: `/metrics scrape max, ${RUNS} runs kept`, value: round(Math.max(...scrape)), unit: 'ms' },
        {
          metric: `GET /v1/runs (20 a page) p50, ${RUNS} runs kept`,
          value: round(percentile(list, 50)),
          unit: 'ms',
        },
        {
          metric: `GET /v1/runs (20 a page) p95, ${RUNS} runs kept`,
          value: round(percentile(list, 95)),
          unit: 'ms',
        },
        {
          metric: `GET /v1/runs?status=failed&limit=50 p50, ${RUNS} runs kept`,
          value: round(percentile(filtered, 50)),
          unit: 'ms',
        },
        {
          metric: `seeding ${RUNS} finished runs (store scripts + BullMQ jobs)`,
          value: round(seededMs / 1000, 1),
          unit: 's',
        },
        { metric: 'keys in Redis after seeding', value: keys, unit: 'keys' },
      ];
    } finally {
      await api.close();
      await dropPrefix(redisUrl, prefix);
    }
  },
};

export default suite;
