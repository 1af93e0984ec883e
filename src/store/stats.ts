/**
 * Metrics counters kept in Redis, in one hash (`{p}:rec:stats`), by the scripts that already
 * write each change: steps run on workers and runs end there, not in the API process that serves
 * `/metrics`, so in-process counters would count nothing. Each counter moves in the same script
 * call as the state it counts (once per applied write, never for a refused late one), and a
 * scrape reads them all with one HGETALL, whatever the number of runs kept.
 *
 * Fields:
 * - `started:<executor>`: attempts started (start-step.lua);
 * - `finished:<executor>:<status>`: steps that reached a final status (transition-step.lua);
 * - `dur:<executor>:<le>`: finished steps whose last attempt took at most `le` ms and more than
 *   the bound below it (`le` is `+Inf` for the last bucket); `dursum:<executor>`: their total ms;
 * - `runs:created`, `runs:<succeeded|failed|cancelled>`: runs announced and ended
 *   (announce-run.lua, finish-run.lua).
 */
import type { RedisClient } from '../redis-client.ts';
import type { Keys } from './keys.ts';
import type { StepDetails } from './run-types.ts';

/** Upper bounds (ms) of the step duration buckets: 100 ms to 1 h, as CI steps range. */
export const DURATION_BUCKETS_MS: readonly number[] = [
  100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000,
];

/** The counters a step's final write adds (transition-step.lua ARGV[10]). */
export function stepFinishedCounters(status: string, details: StepDetails): string {
  const executor = details.executor || 'unknown';
  const fields = [`finished:${executor}:${status}=1`];
  const start = details.startedAt ? Date.parse(details.startedAt) : Number.NaN;
  const end = details.finishedAt ? Date.parse(details.finishedAt) : Number.NaN;
  if (Number.isFinite(start) && Number.isFinite(end) && end >= start) {
    const ms = end - start;
    const le = DURATION_BUCKETS_MS.find((bound) => ms <= bound) ?? '+Inf';
    fields.push(`dur:${executor}:${le}=1`, `dursum:${executor}=${ms}`);
  }
  return fields.join(';');
}

/** One executor's step duration histogram: cumulative counts per bucket bound (ms). */
export interface DurationHistogram {
  /** `[bound ms, count of durations ≤ bound]`, ending with `[Infinity, count]`. */
  buckets: Array<[number, number]>;
  sumMs: number;
  count: number;
}

/** Every counter, parsed. */
export interface Stats {
  started: Map<string, number>;
  /** `executor` → `status` → count. */
  finished: Map<string, Map<string, number>>;
  durations: Map<string, DurationHistogram>;
  runsCreated: number;
  /** Final run status → count. */
  runsFinished: Map<string, number>;
}

/** Parses the counters hash (HGETALL reply). */
export function parseStats(hash: Record<string, string>): Stats {
  const stats: Stats = {
    started: new Map(),
    finished: new Map(),
    durations: new Map(),
    runsCreated: 0,
    runsFinished: new Map(),
  };
  const perBucket = new Map<string, Map<string, number>>();
  const sums = new Map<string, number>();
  for (const [field, raw] of Object.entries(hash)) {
    const value = Number(raw);
    const [kind, a = '', b = ''] = field.split(':');
    if (kind === 'started') stats.started.set(a, value);
    else if (kind === 'finished') {
      const byStatus = stats.finished.get(a) ?? new Map<string, number>();
      stats.finished.set(a, byStatus.set(b, value));
    } else if (kind === 'dur') perBucket.set(a, (perBucket.get(a) ?? new Map()).set(b, value));
    else if (kind === 'dursum') sums.set(a, value);
    else if (kind === 'runs' && a === 'created') stats.runsCreated = value;
    else if (kind === 'runs') stats.runsFinished.set(a, value);
  }
  for (const [executor, counts] of perBucket) {
    let total = 0;
    const buckets: Array<[number, number]> = [];
    for (const bound of [...DURATION_BUCKETS_MS, Number.POSITIVE_INFINITY]) {
      total += counts.get(bound === Number.POSITIVE_INFINITY ? '+Inf' : String(bound)) ?? 0;
      buckets.push([bound, total]);
    }
    stats.durations.set(executor, { buckets, sumMs: sums.get(executor) ?? 0, count: total });
  }
  return stats;
}

/** Reads every counter in one round trip. */
export async function readStats(redis: RedisClient, keys: Keys): Promise<Stats> {
  return parseStats(await redis.hgetall(keys.stats()));
}
