/**
 * Several real worker processes (`conveyor worker`) on one Redis: sharing a run, routing by
 * tags, flagging steps nobody serves, and recovering a SIGKILLed worker's steps with the default
 * lock settings.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/store/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { type ConveyorProcess, spawnConveyor } from '../support/process.ts';

let engine: TestEngine;
// A workspace dir of this file's own: a worker's start-up sweep removes the workspaces of runs
// it does not know, which in a shared dir would be other test files' live runs.
let workspaces: string;
const workers = new Set<ConveyorProcess>();

/** A real worker process; resolves with its heartbeat id once it is ready. */
async function startWorker(env: Record<string, string> = {}): Promise<{ p: ConveyorProcess; id: string }> {
  const p = spawnConveyor('worker', {
    REDIS_URL: redisUrl(),
    CONVEYOR_PREFIX: engine.prefix,
    WORKER_EXECUTORS: 'local',
    WORKER_CONCURRENCY: '4',
    WORKER_WORKSPACE_DIR: workspaces,
    ...env,
  });
  workers.add(p);
  void p.exited.then(() => workers.delete(p));
  const line = await p.line(/worker ready/);
  return { p, id: (JSON.parse(line) as { id: string }).id };
}

const startedBy = (events: RunEvent[]) => {
  const by = new Map<string, string[]>();
  for (const e of events) {
    if (e.type !== 'step.started') continue;
    by.set(e.data.step as string, [...(by.get(e.data.step as string) ?? []), e.data.worker as string]);
  }
  return by;
};

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
  workspaces = mkdtempSync(join(tmpdir(), 'conveyor-scale-'));
});
afterEach(async () => {
  await Promise.all([...workers].map((p) => p.stop()));
});
afterAll(async () => {
  await engine.close();
  rmSync(workspaces, { recursive: true, force: true });
});

describe('three worker processes', () => {
  it('share a 300-step run: every step exactly once, and all three did work; /v1/workers lists them', async () => {
    const ids = (await Promise.all([startWorker(), startWorker(), startWorker()])).map((w) => w.id);
    const listed = await engine.request('GET', '/v1/workers');
    expect(listed.status).toBe(200);
    expect(listed.body.workers.map((w: { id: string }) => w.id).sort()).toEqual([...ids].sort());
    expect(listed.body.workers[0]).toMatchObject({
      executors: ['local'],
      tags: [],
      tagsOnly: false,
      slots: { total: 4, busy: 0, free: 4 },
      version: '0.1.0',
    });
    expect(Date.parse(listed.body.workers[0].lastSeen)).not.toBeNaN();

    const steps: Record<string, unknown> = {};
    for (let i = 0; i < 300; i++) steps[`s${i}`] = { run: 'true' };
    const run = await engine.submit({ name: 'wide', steps });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    const by = startedBy(events);
    expect(by.size).toBe(300);
    for (const [, who] of by) expect(who).toHaveLength(1);
    for (const id of Object.keys(steps)) {
      expect(events.filter((e) => e.type === 'step.succeeded' && e.data.step === id)).toHaveLength(1);
      expect(done.steps[id]!.attempts).toBe(1);
    }
    const perWorker = new Map<string, number>();
    for (const [, [who]] of by) perWorker.set(who!, (perWorker.get(who!) ?? 0) + 1);
    expect([...perWorker.keys()].sort()).toEqual([...ids].sort());
  });

  it('survive a SIGKILL of one: the run succeeds, finished steps do not re-run, its steps re-run as attempt 2 within 15 s', async () => {
    const started = await Promise.all([startWorker(), startWorker(), startWorker()]);
    const victim = started[0]!;
    const steps: Record<string, unknown> = {};
    for (let i = 0; i < 30; i++) steps[`s${i}`] = { run: 'sleep 1.5' };
    const run = await engine.submit({ name: 'kill-one', steps });
    // Kill it as it starts a step after finishing one: that step has 1.5 s left to run.
    const seen: RunEvent[] = [];
    await engine.waitForEvent(run.id, (e) => {
      seen.push(e);
      const mine = new Set(
        seen.filter((s) => s.type === 'step.started' && s.data.worker === victim.id).map((s) => s.data.step),
      );
      const finished = seen.some((s) => s.type === 'step.succeeded' && mine.has(s.data.step));
      return finished && e.type === 'step.started' && e.data.worker === victim.id;
    });
    victim.p.child.kill('SIGKILL');
    await victim.p.exited;
    const killedAt = Date.now();

    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    const killedIndex = events.findIndex((e) => Date.parse(e.data.at as string) >= killedAt);
    const before = killedIndex < 0 ? events : events.slice(0, killedIndex);
    const finishedBefore = new Set(before.filter((e) => e.type === 'step.succeeded').map((e) => e.data.step));
    const interrupted = [...startedBy(before)]
      .filter(([step, who]) => who.at(-1) === victim.id && !finishedBefore.has(step))
      .map(([step]) => step);
    expect(interrupted.length).toBeGreaterThan(0);
    for (const step of Object.keys(steps)) {
      const starts = events.filter((e) => e.type === 'step.started' && e.data.step === step);
      expect(events.filter((e) => e.type === 'step.succeeded' && e.data.step === step)).toHaveLength(1);
      if (finishedBefore.has(step)) expect(starts).toHaveLength(1);
      if (!interrupted.includes(step)) continue;
      expect(starts.map((e) => e.data.attempt)).toEqual([1, 2]);
      expect(starts[1]!.data.worker).not.toBe(victim.id);
      expect(done.steps[step]!.attempts).toBe(2);
      // Measured from the stream: the default lock (8 s) and stalled check (4 s) bring it back.
      expect(Date.parse(starts[1]!.data.at as string) - killedAt).toBeLessThan(15_000);
    }
  }, 90_000);
});

describe('tag routing', () => {
  it('runs runsOn: [gpu] steps only on the gpu worker; flags a tag set nobody serves within 5 s, then runs it once served', async () => {
    const gpu = await startWorker({ WORKER_TAGS: 'gpu' });
    const plain = await startWorker();
    const steps: Record<string, unknown> = {};
    for (let i = 0; i < 6; i++) steps[`g${i}`] = { runsOn: ['gpu'], run: 'true' };
    for (let i = 0; i < 6; i++) steps[`p${i}`] = { run: 'true' };
    steps.both = { runsOn: ['gpu', 'eu'], needs: ['g0'], run: 'echo on eu+gpu' };

    const plan = await engine.request('POST', '/v1/runs?dryRun=true', { workflow: { name: 'tags', steps } });
    expect(plan.status).toBe(200);
    const planned = (id: string) => plan.body.steps.find((s: { id: string }) => s.id === id);
    expect(planned('both')).toMatchObject({
      runsOn: ['eu', 'gpu'],
      queue: 'steps-local@eu+gpu',
      waiting: 'no live worker serves executor local with tags [eu, gpu]',
    });
    expect(planned('g0').waiting).toBeUndefined();

    const submittedAt = Date.now();
    const run = await engine.submit({ name: 'tags', steps });
    const waiting = await engine.waitForEvent(run.id, (e) => e.type === 'step.waiting');
    expect(waiting.data).toMatchObject({
      step: 'both',
      reason: 'no live worker serves executor local with tags [eu, gpu]',
    });
    expect(Date.parse(waiting.data.at as string) - submittedAt).toBeLessThan(5000);
    const doc = await engine.request('GET', `/v1/runs/${run.id}`);
    expect(doc.body.steps.both).toMatchObject({
      status: 'queued',
      runsOn: ['eu', 'gpu'],
      waiting: 'no live worker serves executor local with tags [eu, gpu]',
    });
    expect(doc.body.steps.g1.waiting).toBeUndefined();

    // Every other step done first, so only the gpu worker could have taken the gpu steps.
    let succeeded = 0;
    await engine.waitForEvent(run.id, (e) => e.type === 'step.succeeded' && ++succeeded === 12);
    const both = await startWorker({ WORKER_TAGS: 'x,gpu,eu', WORKER_TAGS_ONLY: 'true' });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(done.steps.both!.waiting).toBeUndefined();
    const by = startedBy(events);
    for (let i = 0; i < 6; i++) expect(by.get(`g${i}`)).toEqual([gpu.id]);
    for (let i = 0; i < 6; i++) expect([gpu.id, plain.id]).toContain(by.get(`p${i}`)![0]);
    expect(by.get('both')).toEqual([both.id]);
  }, 60_000);
});
