/**
 * The retention pass over a large index (issue 9): 100,000 finished runs due to expire (a small
 * record and their entries in the three indexes, written directly with pipelines), removed by
 * one pass while requests keep coming. Measures the pass's rate, the API process's event-loop
 * delay while it runs, and the latency of requests served meanwhile (`GET /readyz`, which goes
 * to Redis on the same connection as the pass).
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import pino from 'pino';
import { startApi } from '../src/api/server.ts';
import { keys } from '../src/store/index.ts';
import { benchPrefix, percentile, round } from './support.ts';
import type { BenchContext, BenchRow, BenchSuite } from './types.ts';

const RUNS = 100_000;
const WRITE_BATCH = 5000;

/** Writes `RUNS` finished runs, all past their expiry, under `prefix`. */
async function seed(redis: Redis, prefix: string): Promise<void> {
  const k = keys(prefix);
  const now = Date.now();
  for (let from = 0; from < RUNS; from += WRITE_BATCH) {
    const pipeline = redis.pipeline();
    for (let i = from; i < Math.min(RUNS, from + WRITE_BATCH); i++) {
      const id = `run_bench${i.toString(36)}`;
      const meta = JSON.stringify({ id, workflow: { name: 'bench', version: 1 } });
      pipeline.hset(
        k.run(id),
        'meta',
        meta,
        'status',
        'succeeded',
        'finishedAt',
        new Date(now).toISOString(),
      );
      pipeline.zadd(k.runs(), now - RUNS + i, id);
      pipeline.zadd(k.workflowRuns('bench'), now - RUNS + i, id);
      pipeline.zadd(k.expiries(), now - 1000, `${id}/bench`);
    }
    await pipeline.exec();
  }
}

const suite: BenchSuite = {
  name: 'retention',
  async run({ redisUrl }: BenchContext): Promise<BenchRow[]> {
    const prefix = benchPrefix('retention');
    const redis = new Redis(redisUrl);
    const api = await startApi({
      redisUrl,
      prefix,
      logger: pino({ level: 'silent' }),
      retentionPass: { intervalMs: 0 },
    });
    try {
      await seed(redis, prefix);
      const latencies: number[] = [];
      let passing = true;
      // Requests one after another for as long as the pass runs, as a busy client would send them.
      const client = (async () => {
        while (passing) {
          const started = performance.now();
          const res = await api.app.request('/readyz');
          if (res.status !== 200) throw new Error(`/readyz answered ${res.status}`);
          latencies.push(performance.now() - started);
        }
      })();
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      const started = performance.now();
      const result = await api.retention.runOnce();
      const elapsed = performance.now() - started;
      delay.disable();
      passing = false;
      await client;
      const left = await redis.zcard(keys(prefix).runs());
      if (result.removed !== RUNS || left !== 0)
        throw new Error(`pass removed ${result.removed}, left ${left}`);
      return [
        { metric: `retention pass over ${RUNS} runs: duration`, value: round(elapsed / 1000), unit: 's' },
        {
          metric: 'retention pass: runs removed per second',
          value: Math.round(RUNS / (elapsed / 1000)),
          unit: 'runs/s',
        },
        { metric: 'retention pass: batches', value: result.batches, unit: 'batches' },
        {
          metric: 'event-loop delay during the pass: max',
          value: round(delay.max / 1e6),
          unit: 'ms',
          target: '≤ 100 ms',
        },
        {
          metric: 'event-loop delay during the pass: p99',
          value: round(delay.percentile(99) / 1e6),
          unit: 'ms',
        },
        { metric: 'GET /readyz during the pass: requests served', value: latencies.length, unit: 'requests' },
        { metric: 'GET /readyz during the pass: p50', value: round(percentile(latencies, 50)), unit: 'ms' },
        { metric: 'GET /readyz during the pass: p99', value: round(percentile(latencies, 99)), unit: 'ms' },
        { metric: 'GET /readyz during the pass: max', value: round(Math.max(...latencies)), unit: 'ms' },
      ];
    } finally {
      await api.close();
      await dropKeys(redis, prefix);
      redis.disconnect();
    }
  },
};

/** Deletes what is left under the bench's prefix. */
async function dropKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `{${prefix}}*`, 'COUNT', 1000);
    cursor = next;
    if (batch.length) await redis.unlink(...batch);
  } while (cursor !== '0');
}

export default suite;
