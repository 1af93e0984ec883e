/**
 * A schedule every second with two real API processes (each runs a tick processor): exactly one
 * run per tick. Then both are stopped and ticks pass while nothing is up: when Conveyor comes back
 * (standalone), the missed ticks start one run (BullMQ's one pending tick job, late), not one each.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { QUEUES } from '../../src/flows/index.ts';
import { bullPrefix } from '../../src/store/index.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { freePort } from '../support/redis-server.ts';

const prefix = testPrefix(import.meta.url);
const schedules = new Queue(QUEUES.schedule, { connection: { url: redisUrl() }, prefix: bullPrefix(prefix) });
const children = new Set<ChildProcess>();
/** Reads the run listing in-process, without a tick processor of its own. */
let reader: ConveyorApi;
beforeAll(async () => {
  reader = await startApi({
    redisUrl: redisUrl(),
    prefix,
    logger: pino({ level: 'silent' }),
    schedules: false,
  });
});
afterAll(async () => {
  await Promise.all([...children].map(stop));
  await reader.close();
  await schedules.close();
  await dropPrefix(redisUrl(), prefix);
});

interface Api {
  url: string;
  child: ChildProcess;
}

/** Starts `conveyor api` as a user would, on the test Redis and prefix. */
async function startApiProcess(mode: 'api' | 'standalone' = 'api'): Promise<Api> {
  const port = await freePort();
  const child = spawn(process.execPath, ['bin/conveyor.mjs', mode], {
    env: {
      ...process.env,
      REDIS_URL: redisUrl(),
      CONVEYOR_PREFIX: prefix,
      PORT: String(port),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('API listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`api exited with ${code}: ${out}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  children.delete(child);
}

interface Run {
  id: string;
  status: string;
  trigger: { type: string; cron: string; timezone: string; scheduledAt: string };
}

async function runs(): Promise<Run[]> {
  const res = await reader.app.request('/v1/runs?workflow=every-second&limit=200');
  return ((await res.json()) as { runs: Run[] }).runs;
}

/** Polls the run listing until `enough` holds (runs are created by ticks, not by the test). */
async function until(enough: (all: Run[]) => boolean): Promise<Run[]> {
  for (;;) {
    const all = await runs();
    if (enough(all)) return all;
    await sleep(200);
  }
}

const ticks = (all: Run[]) => new Set(all.map((r) => r.trigger.scheduledAt));

describe('schedules', () => {
  it('starts exactly one run per tick with two API processes up, and none twice after a downtime', async () => {
    const [a, b] = await Promise.all([startApiProcess(), startApiProcess()]);
    // Both processes compete for the tick jobs.
    expect((await schedules.getWorkers()).length).toBe(2);
    const res = await fetch(`${a.url}/v1/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: 'name: every-second\non:\n  schedule: [{ cron: "*/1 * * * * *" }]\nsteps:\n  a: { run: "true" }\n',
    });
    expect(res.status).toBe(201);

    const seen = await until((all) => ticks(all).size >= 4);
    for (const run of seen) {
      expect(run.trigger).toEqual({
        type: 'schedule',
        cron: '*/1 * * * * *',
        timezone: 'UTC',
        scheduledAt: expect.stringMatching(/\.000Z$/),
      });
    }

    // Everything down while ticks pass.
    await Promise.all([stop(a.child), stop(b.child)]);
    const down = await runs();
    const lastTick = Math.max(...down.map((r) => Date.parse(r.trigger.scheduledAt)));
    await sleep(2500); // wall-clock ticks must pass with nothing up; there is no event to await
    // Standalone this time: its API processes the ticks, its worker runs them.
    const c = await startApiProcess('standalone');
    const restartedAt = Date.now();
    await until((all) => all.length >= down.length + 2 && all.some((r) => r.status === 'succeeded'));
    expect((await fetch(`${c.url}/v1/workflows/every-second`, { method: 'DELETE' })).status).toBe(204);
    expect(await schedules.getJobSchedulersCount()).toBe(0);
    await stop(c.child);

    const all = await runs();
    // One run per tick, whichever process took it.
    expect(ticks(all).size).toBe(all.length);
    // Of the ticks due while nothing was up, only the one BullMQ had already queued ran (late);
    // the next tick came from the restart's clock.
    const missed = all
      .map((r) => Date.parse(r.trigger.scheduledAt))
      .filter((at) => at > lastTick && at < restartedAt - 1000);
    expect(missed).toEqual([lastTick + 1000]);
  });
});
