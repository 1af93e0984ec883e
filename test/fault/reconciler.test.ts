import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bullPrefix } from '../../src/store/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
let redis: Redis;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  redis.disconnect();
  await engine.close();
});

/**
 * Puts a step job in the state BullMQ leaves a job that stalled past its limit: back in `wait`
 * with a deferred failure, which the next worker turns into a failure without calling our
 * processor.
 */
async function stallPastLimit(runId: string, stepId: string, stalls: number): Promise<void> {
  const key = `${bullPrefix(engine.prefix)}:steps-local:${runId}.${stepId}`;
  expect(await redis.exists(key)).toBe(1);
  await redis.hset(key, 'defa', 'job stalled more than allowable limit', 'stc', stalls);
}

describe('failures BullMQ makes without the processor', () => {
  it('records them with the reason, wakes the dependents (gates included) and ends the run', async () => {
    const run = await engine.submit({
      name: 'reconcile',
      steps: {
        a: { run: 'echo never runs' },
        b: { needs: ['a'], run: 'true' },
        c: { needs: ['a'], run: 'true' },
        d: { needs: ['b', 'c'], if: '${{ always() }}', run: 'echo "a=${{ steps.b.status }}"' },
        other: { run: 'true' },
      },
    });
    await stallPastLimit(run.id, 'a', 5);
    const worker = await startEngine(redisUrl(), engine.prefix, {});
    try {
      const { run: done, events } = await engine.waitForRun(run.id);
      expect(done.status).toBe('failed');
      expect(done.steps.a).toMatchObject({
        status: 'failed',
        error: { code: 'worker_lost', message: 'its worker died 5 times while running it' },
      });
      expect(done.steps.b!.status).toBe('skipped');
      // c waits on a gate that only a's end promotes: it must not wait out the gate's year.
      expect(done.steps.c!.status).toBe('skipped');
      expect(done.steps.d!.status).toBe('succeeded');
      expect(done.steps.other!.status).toBe('succeeded');
      expect(events.filter((e) => e.type === 'step.started' && e.data.step === 'a')).toEqual([]);
      expect(events.filter((e) => e.type === 'step.failed' && e.data.step === 'a')).toHaveLength(1);
    } finally {
      await worker.worker!.close();
      await worker.api.close();
    }
  });
});
