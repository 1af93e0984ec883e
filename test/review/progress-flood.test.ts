/**
 * Review of issue 7 (bounds that hold): the 10 MiB log cap counts a step's output bytes, but each
 * `::progress::` line becomes an event of its own in the run's stream, about ten times its size
 * in Redis, with no coalescing. A step printing 14-byte progress lines within the cap can make
 * one attempt cost Redis (and every SSE client replaying the run) many times the cap. The
 * events are written one at a time after the command exits and after the timeout is cleared, so
 * here a step with `timeout: 2s` whose command takes 50 ms ends about 5 s later, succeeded; at
 * the cap (about 700,000 lines) that is minutes past its timeout and over 100 MB of Redis.
 */
import { rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestEngine } from '../support/engine.ts';
import { type LocalEngine, startLocalEngine } from '../support/local-engine.ts';
import { redisUrl } from '../support/prefix.ts';

let engine: TestEngine;
let dir: string;
let local: LocalEngine;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(redisUrl());
  local = await startLocalEngine(import.meta.url);
  ({ engine, dir } = local);
});
afterAll(async () => {
  await engine.close();
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe('a step flooding ::progress:: lines', () => {
  it("costs the run's event stream no more than a few times what it printed", async () => {
    const lines = 40_000;
    const run = await engine.submit({
      name: 'progress-flood',
      steps: { s: { timeout: '2s', run: `seq ${lines} | awk '{ print "::progress::" ($1 % 100) }'` } },
    });
    const { run: done } = await engine.waitForRun(run.id);
    const key = engine.api.deps.store.keys.events(run.id);
    const entries = await redis.xlen(key);
    const bytes = Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
    const output = lines * 15; // "::progress::NN\n" at most
    expect(done.steps.s).toMatchObject({ status: 'succeeded' });
    expect(bytes).toBeLessThan(output * 3);
    expect(entries).toBeLessThan(lines);
  });
});
