/**
 * Schedule tick lateness (issue 10): a `*\/1 * * * * *` schedule observed for a few seconds.
 * Lateness is measured from the tick's scheduled time to the run's record being created and to
 * its first step starting (no-op executor), against raw BullMQ: a job scheduler with the same
 * pattern on the same Redis, measured to its processor being called.
 */
import { Queue, Worker } from 'bullmq';
import pino from 'pino';
import { startApi } from '../src/api/server.ts';
import { bullPrefix } from '../src/store/index.ts';
import { scheduledAtOf } from '../src/triggers/index.ts';
import { startWorker } from '../src/workers/worker.ts';
import { dropPrefix } from '../test/support/prefix.ts';
import { benchPrefix, NoopExecutor, percentile, round } from './support.ts';
import type { BenchContext, BenchRow, BenchSuite } from './types.ts';

/** Ticks measured per side: a few seconds of 1 s ticks. */
const TICKS = 8;
const PATTERN = '*/1 * * * * *';
const logger = pino({ level: 'silent' });

/** A promise and the function that resolves it (Node 20 has no Promise.withResolvers). */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Conveyor: lateness of each tick's run creation and first step start, in ms. */
async function conveyorLateness(redisUrl: string): Promise<{ created: number[]; started: number[] }> {
  const prefix = benchPrefix('schedules');
  const executor = new NoopExecutor();
  const api = await startApi({ redisUrl, prefix, logger });
  const worker = await startWorker({ redisUrl, prefix, executors: [executor], logger });
  const startedAt = new Map<string, number>();
  const enough = signal();
  executor.onStart = (step) => {
    startedAt.set(step.runId, Date.now());
    if (startedAt.size >= TICKS + 1) enough.resolve();
  };
  try {
    const res = await api.app.request('/v1/workflows', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'tick',
        on: { schedule: [{ cron: PATTERN }] },
        steps: { a: { run: 'true' } },
      }),
    });
    if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`);
    await enough.promise;
    await api.app.request('/v1/workflows/tick', { method: 'DELETE' });
    const created: number[] = [];
    const started: number[] = [];
    // The first tick may follow registration by less than a second: it is left out.
    const runs = [...startedAt.keys()].slice(1, TICKS + 1);
    for (const runId of runs) {
      const run = (await api.deps.store.getRun(runId))!;
      const scheduled = Date.parse(String(run.trigger.scheduledAt));
      created.push(Date.parse(run.createdAt) - scheduled);
      started.push(startedAt.get(runId)! - scheduled);
    }
    return { created, started };
  } finally {
    await worker.close();
    await api.close();
    await dropPrefix(redisUrl, prefix);
  }
}

/** Raw BullMQ: lateness of each tick's job reaching its processor, in ms. */
async function rawLateness(redisUrl: string): Promise<number[]> {
  const prefix = bullPrefix(benchPrefix('schedules-raw'));
  const queue = new Queue('ticks', { connection: { url: redisUrl }, prefix });
  const late: number[] = [];
  const enough = signal();
  const worker = new Worker(
    'ticks',
    async (job) => {
      late.push(Date.now() - scheduledAtOf(job));
      if (late.length >= TICKS + 1) enough.resolve();
    },
    { connection: { url: redisUrl, maxRetriesPerRequest: null }, prefix },
  );
  try {
    await worker.waitUntilReady();
    await queue.upsertJobScheduler('tick', { pattern: PATTERN }, { name: 'tick' });
    await enough.promise;
    await queue.removeJobScheduler('tick');
    return late.slice(1, TICKS + 1);
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

const suite: BenchSuite = {
  name: 'schedules',
  async run({ redisUrl }: BenchContext): Promise<BenchRow[]> {
    const raw = await rawLateness(redisUrl);
    const { created, started } = await conveyorLateness(redisUrl);
    const row = (metric: string, values: number[], p: number, peer?: number[]): BenchRow => ({
      metric: `${metric} p${p}`,
      value: round(percentile(values, p)),
      unit: 'ms',
      ...(peer && { peer: 'raw BullMQ scheduler → processor', peerValue: round(percentile(peer, p)) }),
    });
    return [
      row(`schedule tick → run created (${created.length} ticks of 1 s)`, created, 50, raw),
      row(`schedule tick → run created (${created.length} ticks of 1 s)`, created, 99, raw),
      row('schedule tick → first step started', started, 50),
      row('schedule tick → first step started', started, 99),
    ];
  },
};

export default suite;
