/** Shared pieces of the benchmark suites: Redis, percentiles, timing, a no-op executor. */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ConveyorApi } from '../src/api/server.ts';
import { duplicateRedis } from '../src/redis-client.ts';
import { FINAL_RUN_STATUSES } from '../src/store/index.ts';
import type { Executor, ExecutorContext, StepExecution, StepResult } from '../src/workers/executor.ts';

/** POSTs `workflow` as a run to the API at `base` (`http://host:port`); resolves to its id. */
export async function postRun(base: string, workflow: unknown): Promise<string> {
  const res = await fetch(`${base}/v1/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ workflow }),
  });
  if (res.status !== 202) throw new Error(`submit: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/**
 * Waits for runs to end as the workers learn it: the finaliser's announcement (pub/sub), then
 * the run's status. Following the run's event stream instead would put the API's SSE work (every
 * event of the run, read and parsed) into the process measured, which a raw peer does not have.
 */
export async function runEnds(api: ConveyorApi): Promise<{
  finished(runId: string): Promise<void>;
  close(): void;
}> {
  const keys = api.deps.store.keys;
  const subscriber = duplicateRedis(api.deps.redis, { enableOfflineQueue: true, maxRetriesPerRequest: null });
  const waiters = new Map<string, () => void>();
  subscriber.on('message', (_channel: string, runId: string) => waiters.get(runId)?.());
  await subscriber.subscribe(keys.endedChannel());
  return {
    async finished(runId) {
      const ended = new Promise<void>((resolve) => waiters.set(runId, resolve));
      const status = async () => (await api.deps.redis.hget(keys.run(runId), 'status')) ?? '';
      if (!FINAL_RUN_STATUSES.has(await status())) await ended;
      waiters.delete(runId);
      const final = await status();
      if (final !== 'succeeded') throw new Error(`bench run ${runId} ended ${final}`);
    },
    close: () => subscriber.disconnect(),
  };
}

/** A fresh key prefix for one measurement. */
export function benchPrefix(name: string): string {
  return `bench-${name}-${randomBytes(3).toString('hex')}`;
}

/** The p-th percentile (0–100) of `values`. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/** Rounds for the table. */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Registered under the name of the executor it replaces (`local` by default), it returns at once
 * and records when each step started and finished, so the benchmark measures the engine alone.
 */
export class NoopExecutor implements Executor {
  readonly starts = new Map<string, number>();
  readonly ends = new Map<string, number>();
  onStart?: (step: StepExecution) => void;

  constructor(readonly name = 'local') {}

  async run(step: StepExecution, _ctx: ExecutorContext): Promise<StepResult> {
    const key = `${step.runId}/${step.stepId}`;
    this.starts.set(key, performance.now());
    this.onStart?.(step);
    this.ends.set(key, performance.now());
    return { exitCode: 0, outputs: {}, events: [] };
  }

  reset(): void {
    this.starts.clear();
    this.ends.clear();
  }

  async close(): Promise<void> {}
}
