import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../../src/store/index.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

// Starts and final writes queued in one tick go to Redis as one call of their script, each with
// its own reply, applied in order; the store's real scripts on a real Redis.
const prefix = testPrefix(import.meta.url);
let redis: Redis;
let store: RunStore;
/** Calls of each batched script, counted on the way to the real command. */
const calls = { startStep: 0, transitionStep: 0 };

beforeAll(() => {
  redis = new Redis(redisUrl());
  store = new RunStore(redis, prefix, 'w-test');
  const scripted = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const name of ['startStep', 'transitionStep'] as const) {
    const real = scripted[name]!.bind(redis);
    scripted[name] = (...args: unknown[]) => {
      calls[name]++;
      return real(...args);
    };
  }
});
afterAll(async () => {
  redis.disconnect();
  await dropPrefix(redisUrl(), prefix);
});

/** A bare run record: queued, with steps in the given statuses. */
async function record(runId: string, steps: Record<string, string>): Promise<void> {
  const fields = Object.entries(steps).flatMap(([id, status]) => [`st:${id}`, status]);
  await redis.hset(store.keys.run(runId), 'status', 'queued', 'meta', '{}', ...fields);
}

const start = (runId: string, stepId: string, reads: string[] = [], details = false) =>
  store.startStep(runId, stepId, reads, {
    needs: reads.length,
    mode: 'auto',
    executor: 'local',
    continueOnError: false,
    maxInterruptions: 2,
    details,
  });

describe('batched step scripts', () => {
  it('starts the steps of one tick in one call, each with its own reply', async () => {
    await record('r1', { a: 'queued', b: 'queued', c: 'pending' });
    await record('r2', { x: 'queued', done: 'succeeded' });
    const before = calls.startStep;
    const replies = await Promise.all([
      start('r1', 'a'),
      start('r1', 'b'),
      start('r1', 'c', ['a']),
      start('r2', 'x'),
      start('r2', 'done'),
      start('nope', 'a'),
    ]);
    expect(calls.startStep - before).toBe(1);
    expect(replies.map((r) => r.outcome)).toEqual([
      'started',
      'started',
      'early',
      'started',
      'final',
      'missing',
    ]);
    expect(replies.slice(0, 2).map((r) => r.attempt)).toEqual([1, 1]);
    // Entries apply in order: c's read of a sees the `running` the first entry wrote.
    expect(replies[2]!.snapshot.status.a).toBe('running');
    expect(await redis.hget(store.keys.run('r2'), 'st:x')).toBe('running');
  });

  it('sends the final writes of one tick in one call: sent first, then each result, in order', async () => {
    await record('r3', { a: 'queued', b: 'queued', d: 'pending' });
    await Promise.all([start('r3', 'a'), start('r3', 'b')]);
    const before = calls.transitionStep;
    const order: string[] = [];
    const details = { executor: 'local', attempts: 1, outputs: { big: 'x'.repeat(1000) } };
    const a = store.queueTransition({
      runId: 'r3',
      stepId: 'a',
      status: 'succeeded',
      details,
      event: { type: 'step.succeeded', step: 'a' },
      dependents: [{ id: 'd', needs: ['a', 'b'] }],
    });
    // The same step again in the same call: refused, since the entry before made it final.
    const again = store.queueTransition({ runId: 'r3', stepId: 'a', status: 'failed', details, attempt: 1 });
    const stale = store.queueTransition({
      runId: 'r3',
      stepId: 'b',
      status: 'succeeded',
      details,
      attempt: 5,
    });
    const b = store.queueTransition({
      runId: 'r3',
      stepId: 'b',
      status: 'succeeded',
      details,
      dependents: [{ id: 'd', needs: ['a', 'b'] }],
      attempt: 1,
    });
    void a.sent.then(() => order.push('sent'));
    void a.applied.then(() => order.push('applied'));
    expect(await Promise.all([a.applied, again.applied, stale.applied, b.applied])).toEqual([
      true,
      false,
      false,
      true,
    ]);
    expect(calls.transitionStep - before).toBe(1);
    expect(order).toEqual(['sent', 'applied']);
    const fields = await redis.hmget(store.keys.run('r3'), 'st:a', 'st:b', 'st:d');
    expect(fields).toEqual(['succeeded', 'succeeded', 'queued']);
  });

  it('gives needs their details only when asked, and a failed need its details always', async () => {
    await record('r4', { a: 'queued', f: 'queued', c: 'pending' });
    await Promise.all([start('r4', 'a'), start('r4', 'f')]);
    const outputs = { out: 'value' };
    await Promise.all([
      store.transition({
        runId: 'r4',
        stepId: 'a',
        status: 'succeeded',
        details: { executor: 'local', attempts: 1, outputs },
        attempt: 1,
      }),
      store.transition({
        runId: 'r4',
        stepId: 'f',
        status: 'failed',
        details: { executor: 'local', attempts: 1, continueOnError: true },
        attempt: 1,
      }),
    ]);
    const lean = await store.startStep('r4', 'c', ['a', 'f'], {
      needs: 2,
      mode: 'read',
      executor: 'local',
      continueOnError: false,
      maxInterruptions: 2,
      details: false,
    });
    expect(lean.snapshot.status).toMatchObject({ a: 'succeeded', f: 'failed' });
    expect(lean.snapshot.details.a).toBeUndefined();
    expect(lean.snapshot.details.f?.continueOnError).toBe(true);
    const full = await start('r4', 'c', ['a', 'f'], true);
    expect(full.outcome).toBe('started'); // f failed with continueOnError: success() holds
    expect(full.snapshot.details.a?.outputs).toEqual(outputs);
  });

  it('splits a tick of more than 100 entries into calls of at most 100', async () => {
    const ids = Array.from({ length: 150 }, (_, i) => `s${i}`);
    await record('r5', Object.fromEntries(ids.map((id) => [id, 'queued'])));
    const before = calls.startStep;
    const replies = await Promise.all(ids.map((id) => start('r5', id)));
    expect(calls.startStep - before).toBe(2);
    expect(replies.every((r) => r.outcome === 'started' && r.attempt === 1)).toBe(true);
  });
});
