/**
 * The engine's core benchmark (issue 2): Conveyor against raw BullMQ on the same Redis, in the
 * same process, same concurrency.
 *  (a) no-op throughput: 1 run × 1,000 independent steps, 100 runs × 10 steps, vs a plain Worker
 *  (b) step → dependent latency over a 200-step chain, vs the same chain as a raw BullMQ flow
 *  (c) submit-to-finish of a 1,000-step and of a 10,000-step random DAG
 *  (d) POST (real HTTP) to first step started
 *  (e) worker heap after 10,000 steps vs after 100
 *  (f) a `run: true` chain on the local executor vs raw BullMQ jobs spawning the same command
 * A run's end is seen as its workers see it (the finaliser's pub/sub announcement, then the
 * status), not by streaming its events into the process measured.
 */
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { type FlowJob, FlowProducer, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import { startApi } from '../src/api/server.ts';
import { bullPrefix } from '../src/store/index.ts';
import { LocalExecutor } from '../src/workers/local/index.ts';
import { startWorker } from '../src/workers/worker.ts';
import { benchPrefix, NoopExecutor, percentile, postRun, round, runEnds } from './support.ts';
import type { BenchContext, BenchRow, BenchSuite } from './types.ts';

const CONCURRENCY = 100;
/** Each figure is the median of this many trials: this 2-core VM is noisy from one run to the next. */
const TRIALS = 3;

/** Median of `TRIALS` runs of `measure`. */
async function median(measure: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < TRIALS; i++) values.push(await measure());
  return percentile(values, 50);
}
const logger = pino({ level: 'silent' });
const run = promisify(execFile);

/** An in-process Conveyor (API on a real port, one worker) under a fresh prefix. */
export async function conveyor(
  redisUrl: string,
  executor: NoopExecutor | LocalExecutor,
  concurrency = CONCURRENCY,
) {
  const prefix = benchPrefix('core');
  const api = await startApi({ redisUrl, prefix, port: 0, logger });
  const worker = await startWorker({ redisUrl, prefix, executors: [executor], concurrency, logger });
  const base = `http://127.0.0.1:${api.port}`;
  const submit = (workflow: unknown) => postRun(base, workflow);
  const ends = await runEnds(api);
  return {
    api,
    worker,
    submit,
    finished: ends.finished,
    base,
    async close() {
      ends.close();
      await worker.close();
      await api.close();
    },
  };
}

export const independent = (n: number, name = 'wide') => ({
  name,
  steps: Object.fromEntries(Array.from({ length: n }, (_, i) => [`s${i}`, { run: 'true' }])),
});
export const chain = (n: number, run = 'true') => ({
  name: 'chain',
  steps: Object.fromEntries(
    Array.from({ length: n }, (_, i) => [`s${i}`, { needs: i ? [`s${i - 1}`] : [], run }]),
  ),
});
export function randomDag(n: number, seed = 42) {
  let x = seed;
  const rand = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
  const steps: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const needs = new Set<string>();
    const k = i === 0 ? 0 : Math.floor(rand() * 4);
    for (let j = 0; j < k; j++) needs.add(`s${Math.floor(rand() * i)}`);
    steps[`s${i}`] = { needs: [...needs], run: 'true' };
  }
  return { name: 'dag', steps };
}

/** Raw BullMQ: `n` no-op jobs added with addBulk, processed by a plain Worker. */
export async function rawThroughput(redisUrl: string, n: number): Promise<number> {
  const prefix = bullPrefix(benchPrefix('raw'));
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('raw', { connection, prefix });
  let done = 0;
  let resolve!: () => void;
  const all = new Promise<void>((r) => {
    resolve = r;
  });
  const worker = new Worker('raw', async () => ({ ok: true }), {
    connection,
    prefix,
    concurrency: CONCURRENCY,
  });
  worker.on('completed', () => {
    if (++done === n) resolve();
  });
  await worker.waitUntilReady();
  const t0 = performance.now();
  await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'noop', data: { i } })));
  await all;
  const seconds = (performance.now() - t0) / 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  return n / seconds;
}

/** Raw BullMQ flow: a chain of `n` parent/child jobs; returns child-finish → parent-start gaps (ms). */
export async function rawChain(redisUrl: string, n: number, work: () => Promise<unknown> = async () => {}) {
  const prefix = bullPrefix(benchPrefix('rawflow'));
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const flows = new FlowProducer({ connection, prefix });
  const starts = new Map<number, number>();
  const ends = new Map<number, number>();
  let resolve!: () => void;
  const all = new Promise<void>((r) => {
    resolve = r;
  });
  const worker = new Worker(
    'rawchain',
    async (job) => {
      const i = job.data.i as number;
      starts.set(i, performance.now());
      await work();
      ends.set(i, performance.now());
      if (i === n - 1) setImmediate(resolve);
    },
    { connection, prefix, concurrency: CONCURRENCY },
  );
  await worker.waitUntilReady();
  let node: FlowJob = { name: 'c', queueName: 'rawchain', data: { i: 0 } };
  for (let i = 1; i < n; i++) node = { name: 'c', queueName: 'rawchain', data: { i }, children: [node] };
  const t0 = performance.now();
  await flows.add(node);
  await all;
  const total = performance.now() - t0;
  const gaps = Array.from({ length: n - 1 }, (_, i) => starts.get(i + 1)! - ends.get(i)!);
  await worker.close();
  await flows.close();
  connection.disconnect();
  return { gaps, total };
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

const suite: BenchSuite = {
  name: 'core',
  async run({ redisUrl }: BenchContext): Promise<BenchRow[]> {
    const rows: BenchRow[] = [];
    const noop = new NoopExecutor();
    const engine = await conveyor(redisUrl, noop);
    try {
      // Warm up connections, script caches and the JIT on the shapes measured below (both sides).
      await engine.finished(await engine.submit(independent(1000)));
      await Promise.all(
        Array.from({ length: 100 }, () => engine.submit(independent(10, 'ten'))).map(async (id) =>
          engine.finished(await id),
        ),
      );
      await rawThroughput(redisUrl, 1000);

      // (a) throughput
      const raw = await median(() => rawThroughput(redisUrl, 1000));
      const wide = await median(async () => {
        const t0 = performance.now();
        await engine.finished(await engine.submit(independent(1000)));
        return 1000 / ((performance.now() - t0) / 1000);
      });
      rows.push({
        metric: '(a) no-op steps/s, 1 run × 1,000 independent',
        value: round(wide, 0),
        unit: 'steps/s',
        peer: 'raw BullMQ jobs/s',
        peerValue: round(raw, 0),
        target: '≥ 0.6× peer',
      });
      const many = await median(async () => {
        const t0 = performance.now();
        const ids = await Promise.all(
          Array.from({ length: 100 }, () => engine.submit(independent(10, 'ten'))),
        );
        await Promise.all(ids.map((id) => engine.finished(id)));
        return 1000 / ((performance.now() - t0) / 1000);
      });
      rows.push({
        metric: '(a) no-op steps/s, 100 runs × 10 steps',
        value: round(many, 0),
        unit: 'steps/s',
        peer: 'raw BullMQ jobs/s',
        peerValue: round(raw, 0),
        target: '≥ 0.6× peer',
      });

      // (b) chain latency
      noop.reset();
      const chainId = await engine.submit(chain(200));
      await engine.finished(chainId);
      const gaps = Array.from(
        { length: 199 },
        (_, i) => noop.starts.get(`${chainId}/s${i + 1}`)! - noop.ends.get(`${chainId}/s${i}`)!,
      );
      const rawGaps = (await rawChain(redisUrl, 200)).gaps;
      rows.push({
        metric: '(b) chain of 200: finish → dependent start, p50',
        value: round(percentile(gaps, 50)),
        unit: 'ms',
        peer: 'raw BullMQ flow chain',
        peerValue: round(percentile(rawGaps, 50)),
        target: '≤ 1.5× peer',
      });
      rows.push({
        metric: '(b) chain of 200: finish → dependent start, p99',
        value: round(percentile(gaps, 99)),
        unit: 'ms',
        peer: 'raw BullMQ flow chain',
        peerValue: round(percentile(rawGaps, 99)),
        target: '≤ 1.5× peer',
      });

      // (c) 1,000-step random DAG
      const dagMs = await median(async () => {
        const t0 = performance.now();
        await engine.finished(await engine.submit(randomDag(1000)));
        return performance.now() - t0;
      });
      rows.push({
        metric: '(c) 1,000-step random DAG, submit → finished',
        value: round(dagMs, 0),
        unit: 'ms',
        target: '≤ 1000 ms',
      });
      const bigDagMs = await median(async () => {
        const t0 = performance.now();
        await engine.finished(await engine.submit(randomDag(10_000)));
        return performance.now() - t0;
      });
      rows.push({
        metric: '(c) 10,000-step random DAG, submit → finished',
        value: round(bigDagMs, 0),
        unit: 'ms',
        target: '≤ 10000 ms',
      });

      // (d) POST → first step started (real HTTP)
      const firsts: number[] = [];
      for (let i = 0; i < 30; i++) {
        let started!: (t: number) => void;
        const first = new Promise<number>((r) => {
          started = r;
        });
        noop.onStart = () => started(performance.now());
        const sent = performance.now();
        const id = await engine.submit(independent(1, 'first'));
        firsts.push((await first) - sent);
        await engine.finished(id);
      }
      noop.onStart = undefined;
      rows.push({
        metric: '(d) POST /v1/runs → first step started, p50',
        value: round(percentile(firsts, 50)),
        unit: 'ms',
        target: '≤ 10 ms',
      });
      rows.push({
        metric: '(d) POST /v1/runs → first step started, p99',
        value: round(percentile(firsts, 99)),
        unit: 'ms',
      });

      // (e) memory
      noop.reset();
      await engine.finished(await engine.submit(independent(100, 'mem')));
      gc();
      const after100 = process.memoryUsage();
      for (let i = 0; i < 10; i++) {
        noop.reset();
        await engine.finished(await engine.submit(randomDag(1000, i + 1)));
      }
      noop.reset();
      gc();
      const after10k = process.memoryUsage();
      rows.push({
        metric: '(e) heap used after 10,000 steps (API + worker)',
        value: round(after10k.heapUsed / 2 ** 20, 1),
        unit: 'MiB',
        peer: 'after 100 steps',
        peerValue: round(after100.heapUsed / 2 ** 20, 1),
        target: '≤ +50 MiB',
      });
      rows.push({
        metric: '(e) RSS after 10,000 steps',
        value: round(after10k.rss / 2 ** 20, 1),
        unit: 'MiB',
        peer: 'after 100 steps',
        peerValue: round(after100.rss / 2 ** 20, 1),
        target: '≤ +50 MiB',
      });
    } finally {
      await engine.close();
    }

    // (f) real processes: `run: true` through the local executor vs raw BullMQ spawning the same
    const local = await conveyor(redisUrl, new LocalExecutor(), 8);
    try {
      await local.finished(await local.submit(chain(5)));
      const t0 = performance.now();
      await local.finished(await local.submit(chain(50)));
      const perStep = (performance.now() - t0) / 50;
      const rawSpawn = await rawChain(redisUrl, 50, () => run('/bin/sh', ['-c', 'true']));
      rows.push({
        metric: '(f) `run: true` chain of 50, per step',
        value: round(perStep),
        unit: 'ms',
        peer: 'raw BullMQ chain spawning sh -c true',
        peerValue: round(rawSpawn.total / 50),
      });
    } finally {
      await local.close();
    }
    return rows;
  },
};

export default suite;
