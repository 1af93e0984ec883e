/**
 * One scrape's data → Prometheus metrics (prom-client). The values live in Redis, so each scrape
 * builds its metrics afresh from the snapshot; only the process metrics of this API process
 * (`process_*`, `nodejs_*`) are prom-client's own, collected in-process.
 */
import { Counter, Gauge, type Metric, Registry } from 'prom-client';
import { EXECUTOR_NAMES } from '../../flows/index.ts';
import { type MetricsSnapshot, QUEUE_STATES } from './snapshot.ts';

/** A histogram whose buckets were counted elsewhere (in Redis): prom-client only formats it. */
function countedHistogram(
  name: string,
  help: string,
  series: Array<{
    labels: Record<string, string>;
    buckets: Array<[number, number]>;
    sum: number;
    count: number;
  }>,
): Metric {
  const values = series.flatMap(({ labels, buckets, sum, count }) => [
    ...buckets.map(([le, value]) => ({
      metricName: `${name}_bucket`,
      labels: { ...labels, le: Number.isFinite(le) ? String(le) : '+Inf' },
      value,
    })),
    { metricName: `${name}_sum`, labels, value: sum },
    { metricName: `${name}_count`, labels, value: count },
  ]);
  const metric = { name, help, type: 'histogram', aggregator: 'sum' };
  // prom-client's Registry formats any object with this shape; its Metric union names only its classes.
  return { ...metric, get: async () => ({ ...metric, values }) } as unknown as Metric;
}

/** Builds the scrape's registry. */
export function snapshotRegistry(s: MetricsSnapshot): Registry {
  const registers = [new Registry()];
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new Gauge({ name, help, labelNames, registers });
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers });

  const depth = gauge('conveyor_queue_jobs', 'Jobs in each queue, by BullMQ state', ['queue', 'state']);
  const oldest = gauge(
    'conveyor_queue_oldest_waiting_seconds',
    'Seconds the job next in line of each queue has been due (0 when none waits)',
    ['queue'],
  );
  for (const q of s.queues) {
    for (const state of QUEUE_STATES) depth.set({ queue: q.name, state }, q.counts[state]);
    oldest.set({ queue: q.name }, q.oldestWaitingSeconds);
  }

  const executors = new Set<string>([
    ...EXECUTOR_NAMES,
    ...s.stats.started.keys(),
    ...s.stats.finished.keys(),
  ]);
  const started = counter('conveyor_steps_started_total', 'Step attempts started, by executor', ['executor']);
  const finished = counter('conveyor_steps_finished_total', 'Steps that reached a final status', [
    'executor',
    'status',
  ]);
  for (const executor of executors) {
    started.inc({ executor }, s.stats.started.get(executor) ?? 0);
    for (const status of ['succeeded', 'failed', 'skipped', 'cancelled']) {
      finished.inc({ executor, status }, s.stats.finished.get(executor)?.get(status) ?? 0);
    }
  }
  registers[0]!.registerMetric(
    countedHistogram(
      'conveyor_step_duration_seconds',
      "Duration of finished steps' last attempt, by executor",
      [...s.stats.durations].map(([executor, h]) => ({
        labels: { executor },
        buckets: h.buckets.map(([le, n]) => [le / 1000, n] as [number, number]),
        sum: h.sumMs / 1000,
        count: h.count,
      })),
    ),
  );

  counter('conveyor_runs_created_total', 'Runs created').inc(s.stats.runsCreated);
  const runs = counter('conveyor_runs_finished_total', 'Runs ended, by final status', ['status']);
  let ended = 0;
  for (const status of ['succeeded', 'failed', 'cancelled']) {
    const n = s.stats.runsFinished.get(status) ?? 0;
    runs.inc({ status }, n);
    ended += n;
  }
  gauge('conveyor_runs_in_progress', 'Runs created and not ended (queued or running)').set(
    Math.max(0, s.stats.runsCreated - ended),
  );

  gauge('conveyor_workers', 'Live workers (heartbeat not expired)').set(s.workers.length);
  const slots = gauge('conveyor_worker_slots', 'Step slots of live workers, by executor and state', [
    'executor',
    'state',
  ]);
  const perExecutor = new Map<string, { busy: number; total: number }>();
  for (const w of s.workers) {
    for (const executor of w.executors) {
      const entry = perExecutor.get(executor) ?? { busy: 0, total: 0 };
      entry.total += w.concurrency;
      // A worker's slots are shared by every queue it serves: they count under each executor.
      entry.busy += Math.min(w.busy, w.concurrency);
      perExecutor.set(executor, entry);
    }
  }
  for (const executor of new Set([...EXECUTOR_NAMES, ...perExecutor.keys()])) {
    const { busy, total } = perExecutor.get(executor) ?? { busy: 0, total: 0 };
    slots.set({ executor, state: 'busy' }, busy);
    slots.set({ executor, state: 'free' }, total - busy);
  }

  gauge(
    'conveyor_event_feed_lag_seconds',
    "How long the events of the shared SSE reader's last read had waited in Redis (0 when idle)",
  ).set(s.feed.lagMs / 1000);
  gauge('conveyor_event_feed_streams', 'Open event streams (SSE clients) on this API process').set(
    s.feed.followers,
  );
  const bus = gauge('conveyor_event_bus_lag_entries', 'Event bus entries a consumer group has not read', [
    'group',
  ]);
  for (const g of s.busGroups) bus.set({ group: g.name }, g.lag);
  gauge('conveyor_redis_ping_seconds', 'Round trip of a PING to Redis during this scrape').set(
    s.redisPingSeconds,
  );
  return registers[0]!;
}
