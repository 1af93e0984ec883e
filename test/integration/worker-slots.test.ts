/**
 * `WORKER_CONCURRENCY` is per process: a worker serving an untagged and a tagged queue never runs
 * more steps at once than its slots, and a job waiting for a slot keeps its lock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/store/index.ts';
import { LocalExecutor, Workspaces } from '../../src/workers/local/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
// Workspaces of this file's own: a worker's start-up sweep would remove other files' live ones.
const dir = mkdtempSync(join(tmpdir(), 'conveyor-slots-'));
const local = () => new LocalExecutor({ killGraceMs: 1000, workspaces: new Workspaces({ baseDir: dir }) });

beforeAll(async () => {
  // A lock shorter than a step: a job that waited for a slot without renewals would stall.
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    executors: [local()],
    concurrency: 2,
    tags: ['gpu'],
    lockMs: 1000,
    stalledIntervalMs: 500,
  });
});
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The most steps the record ever had running at once, in stream order. */
function peakRunning(events: RunEvent[]): number {
  let running = 0;
  let peak = 0;
  for (const e of events) {
    if (e.type === 'step.started') peak = Math.max(peak, ++running);
    if (e.type === 'step.succeeded' || e.type === 'step.failed') running--;
  }
  return peak;
}

describe('slots shared by every queue of a worker', () => {
  it('runs at most WORKER_CONCURRENCY steps at once over both queues; waiting jobs keep their locks', async () => {
    expect(engine.worker!.queues()).toEqual(['steps-local']);
    const steps: Record<string, unknown> = {};
    for (let i = 0; i < 3; i++) steps[`gpu${i}`] = { runsOn: ['gpu'], run: 'sleep 1.5' };
    for (let i = 0; i < 3; i++) steps[`cpu${i}`] = { run: 'sleep 1.5' };
    const run = await engine.submit({ name: 'slots', steps });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(engine.worker!.queues().sort()).toEqual(['steps-local', 'steps-local@gpu']);
    expect(peakRunning(events)).toBe(2);
    expect(events.filter((e) => e.type === 'step.retrying')).toEqual([]);
    for (const id of Object.keys(steps)) expect(done.steps[id]!.attempts).toBe(1);
  });
});
