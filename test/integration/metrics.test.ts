/**
 * `GET /metrics` after real runs on a real worker: every series with its labels, counters kept
 * in Redis by the step scripts, heartbeats with busy slots, and queue depth per state.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueNames } from '../../src/flows/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { parsePrometheus, type Sample, sampleValue } from '../support/prometheus.ts';

let engine: TestEngine;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metrics-test-'));
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { concurrency: 3, heartbeatMs: 100 });
});
afterAll(async () => {
  await engine.close();
  await rm(dir, { recursive: true, force: true });
});

async function scrape(): Promise<Sample[]> {
  const res = await engine.api.app.request('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

/** Scrapes until `done` holds (heartbeats land every 100 ms): waits for an effect, not a time. */
async function scrapeUntil(done: (samples: Sample[]) => boolean): Promise<Sample[]> {
  for (;;) {
    const samples = await scrape();
    if (done(samples)) return samples;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('GET /metrics', () => {
  it('reports every queue in every state, the live worker and its free slots before any run', async () => {
    const samples = await scrape();
    for (const queue of queueNames()) {
      for (const state of ['waiting', 'active', 'delayed', 'waiting-children', 'failed', 'completed']) {
        expect(sampleValue(samples, 'conveyor_queue_jobs', { queue, state })).toBe(0);
      }
      expect(sampleValue(samples, 'conveyor_queue_oldest_waiting_seconds', { queue })).toBe(0);
    }
    expect(sampleValue(samples, 'conveyor_workers')).toBe(1);
    expect(sampleValue(samples, 'conveyor_worker_slots', { executor: 'local', state: 'free' })).toBe(3);
    expect(sampleValue(samples, 'conveyor_worker_slots', { executor: 'local', state: 'busy' })).toBe(0);
    expect(sampleValue(samples, 'conveyor_worker_slots', { executor: 'ssh', state: 'free' })).toBe(0);
    expect(sampleValue(samples, 'conveyor_runs_created_total')).toBe(0);
    expect(sampleValue(samples, 'conveyor_redis_ping_seconds')).toBeGreaterThan(0);
    expect(sampleValue(samples, 'conveyor_event_feed_streams')).toBe(0);
    expect(samples.some((s) => s.name === 'process_resident_memory_bytes')).toBe(true);
  });

  it('counts steps by executor and status, their durations and runs by status after a run', async () => {
    const run = await engine.submit({
      name: 'metered',
      steps: {
        ok: { run: 'echo fine' },
        bad: { needs: ['ok'], run: 'exit 3' },
        never: { needs: ['bad'], run: 'echo unreachable' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('failed');
    const samples = await scrape();
    const local = { executor: 'local' };
    expect(sampleValue(samples, 'conveyor_steps_started_total', local)).toBe(2);
    expect(sampleValue(samples, 'conveyor_steps_finished_total', { ...local, status: 'succeeded' })).toBe(1);
    expect(sampleValue(samples, 'conveyor_steps_finished_total', { ...local, status: 'failed' })).toBe(1);
    expect(sampleValue(samples, 'conveyor_steps_finished_total', { ...local, status: 'skipped' })).toBe(1);
    expect(sampleValue(samples, 'conveyor_steps_finished_total', { ...local, status: 'cancelled' })).toBe(0);
    expect(sampleValue(samples, 'conveyor_steps_started_total', { executor: 'vm' })).toBe(0);

    // The two steps that ran are observed; the skipped one never started, so it has no duration.
    const buckets = samples.filter((s) => s.name === 'conveyor_step_duration_seconds_bucket');
    expect(buckets.every((s) => s.labels.executor === 'local')).toBe(true);
    const counts = buckets.map((s) => s.value);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(sampleValue(samples, 'conveyor_step_duration_seconds_bucket', { ...local, le: '+Inf' })).toBe(2);
    expect(sampleValue(samples, 'conveyor_step_duration_seconds_count', local)).toBe(2);
    expect(sampleValue(samples, 'conveyor_step_duration_seconds_sum', local)).toBeGreaterThanOrEqual(0);

    expect(sampleValue(samples, 'conveyor_runs_created_total')).toBe(1);
    expect(sampleValue(samples, 'conveyor_runs_finished_total', { status: 'failed' })).toBe(1);
    expect(sampleValue(samples, 'conveyor_runs_finished_total', { status: 'succeeded' })).toBe(0);
    expect(sampleValue(samples, 'conveyor_runs_in_progress')).toBe(0);
    expect(sampleValue(samples, 'conveyor_queue_jobs', { queue: 'runs', state: 'completed' })).toBe(1);
    expect(sampleValue(samples, 'conveyor_queue_jobs', { queue: 'steps-local', state: 'active' })).toBe(0);
  });

  it('shows a running step as a busy slot and a step no worker serves as waiting, with its age', async () => {
    const release = join(dir, 'release');
    const held = await engine.submit({
      name: 'held',
      steps: { wait: { run: `while [ ! -e '${release}' ]; do sleep 0.02; done` } },
    });
    await engine.waitForEvent(held.id, (e) => e.type === 'step.started');
    const busy = await scrapeUntil(
      (s) => sampleValue(s, 'conveyor_worker_slots', { executor: 'local', state: 'busy' }) === 1,
    );
    expect(sampleValue(busy, 'conveyor_worker_slots', { executor: 'local', state: 'free' })).toBe(2);
    expect(sampleValue(busy, 'conveyor_queue_jobs', { queue: 'steps-local', state: 'active' })).toBe(1);
    expect(sampleValue(busy, 'conveyor_runs_in_progress')).toBe(1);
    await writeFile(release, '');
    expect((await engine.waitForRun(held.id)).run.status).toBe('succeeded');

    // This worker serves only `local`: a function step waits in steps-vm.
    const before = Date.now();
    const parked = await engine.submit({
      name: 'parked',
      steps: { f: { function: 'export default async () => ({})' } },
    });
    const samples = await scrape();
    const age = sampleValue(samples, 'conveyor_queue_oldest_waiting_seconds', { queue: 'steps-vm' });
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThanOrEqual((Date.now() - before) / 1000);
    expect(sampleValue(samples, 'conveyor_queue_jobs', { queue: 'steps-vm', state: 'waiting' })).toBe(1);
    expect(sampleValue(samples, 'conveyor_queue_jobs', { queue: 'runs', state: 'waiting-children' })).toBe(1);
    expect(sampleValue(samples, 'conveyor_runs_in_progress')).toBe(1);
    expect(sampleValue(samples, 'conveyor_runs_finished_total', { status: 'succeeded' })).toBe(1);
    expect(parked.status).toBe('queued');
  });
});
