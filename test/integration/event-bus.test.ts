import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { RunStore, TriggerStore } from '../../src/store/index.ts';
import { type EventRecord, startEventBus } from '../../src/triggers/index.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { eventually } from '../support/processes.ts';

// Two API processes' worth of consumers on one prefix, no worker: runs are counted, not run.
const prefix = testPrefix(import.meta.url);
const logger = pino({ level: 'silent' });
let apis: ConveyorApi[];
let redis: Redis;

beforeAll(async () => {
  apis = [
    await startApi({ redisUrl: redisUrl(), prefix, logger }),
    await startApi({ redisUrl: redisUrl(), prefix, logger }),
  ];
  redis = new Redis(redisUrl());
  const res = await apis[0]!.app.request('/v1/workflows', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bus-sub', on: { event: ['bus.ping'] }, steps: { a: { run: 'true' } } }),
  });
  expect(res.status).toBe(201);
});
afterAll(async () => {
  for (const api of apis) await api.close();
  redis.disconnect();
  await dropPrefix(redisUrl(), prefix);
});

const store = () => new RunStore(redis, prefix);

/** Follows the log of events until `count` records match; awaits, never polls. */
async function records(
  count: number,
  match: (r: EventRecord) => boolean,
  key = store().keys.eventLog(),
): Promise<EventRecord[]> {
  const reader = new Redis(redisUrl());
  const found: EventRecord[] = [];
  let last = '0';
  try {
    while (found.length < count) {
      const reply = (await reader.xread('BLOCK', 5000, 'STREAMS', key, last)) as Array<
        [string, Array<[string, string[]]>]
      > | null;
      for (const [id, fields] of reply?.[0]?.[1] ?? []) {
        last = id;
        const record = JSON.parse(fields[1]!) as EventRecord;
        if (match(record)) found.push(record);
      }
    }
    return found;
  } finally {
    reader.disconnect();
  }
}

describe('the event bus consumer group', () => {
  it('hands each emitted event to exactly one of several API processes, and acknowledges it', async () => {
    const events = Array.from({ length: 30 }, (_, i) => ({ type: 'bus.ping', payload: { i } }));
    // As steps publish: one entry per event, from a run that has no record here (depth 0 → 1).
    await store().publish({ runId: 'run_shared', stepId: 'emit' }, events);
    const seen = await records(30, (r) => r.source.type === 'step' && r.source.runId === 'run_shared');
    expect(seen.map((r) => (r.payload as { i: number }).i).sort((a, b) => a - b)).toEqual(
      events.map((_, i) => i),
    );
    expect(seen.every((r) => r.runs.length === 1 && r.depth === 1)).toBe(true);
    expect(new Set(seen.map((r) => r.runs[0]!.id)).size).toBe(30);
    const runs = await redis.zcard(store().keys.workflowRuns('bus-sub'));
    expect(runs).toBe(30);
    const keys = store().keys;
    // The entry is acknowledged just after its event is recorded: wait for the last XACK.
    let pending = -1;
    await eventually(async () => {
      [pending] = (await redis.xpending(keys.bus(), keys.busGroup())) as [number];
      return pending === 0;
    }, 5000);
    expect(pending).toBe(0);
    // Two consumers (one per API) read the group.
    const consumers = (await redis.xinfo('CONSUMERS', keys.bus(), keys.busGroup())) as unknown[];
    expect(consumers).toHaveLength(2);
  });

  it('takes over an entry whose consumer died before acknowledging it, starting its runs once', async () => {
    // A prefix of its own with no consumer running, so the dying consumer surely gets the entry.
    const lonely = `${prefix}-takeover`;
    const api = await startApi({ redisUrl: redisUrl(), prefix: lonely, logger, consumeEvents: false });
    const lonelyStore = new RunStore(redis, lonely);
    const keys = lonelyStore.keys;
    try {
      const res = await api.app.request('/v1/workflows', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'bus-sub', on: { event: ['bus.ping'] }, steps: { a: { run: 'true' } } }),
      });
      expect(res.status).toBe(201);
      await new TriggerStore(redis, lonely).ensureBusGroup();
      await lonelyStore.publish({ runId: 'run_orphan', stepId: 'emit' }, [
        { type: 'bus.ping', payload: 'x' },
      ]);
      const read = (await redis.xreadgroup(
        'GROUP',
        keys.busGroup(),
        'dead-consumer',
        'STREAMS',
        keys.bus(),
        '>',
      )) as Array<[string, Array<[string, string[]]>]>;
      const entryId = read[0]![1][0]![0];
      const rescuer = await startEventBus({
        redis: { url: redisUrl() },
        prefix: lonely,
        events: api.deps.eventTriggers,
        depthOf: async () => 0,
        logger,
        claimIdleMs: 20,
        blockMs: 50,
      });
      try {
        const [record] = await records(
          1,
          (r) => r.source.type === 'step' && r.source.runId === 'run_orphan',
          keys.eventLog(),
        );
        expect(record!.runs).toHaveLength(1);
      } finally {
        await rescuer.close();
      }
      const [pending] = (await redis.xpending(keys.bus(), keys.busGroup())) as [number];
      expect(pending).toBe(0);
      // Handling the same entry again (a second takeover) answers from the first handling.
      const again = await api.deps.eventTriggers.publish({
        type: 'bus.ping',
        payload: 'x',
        source: { type: 'step', runId: 'run_orphan', stepId: 'emit' },
        depth: 1,
        scope: `bus:${entryId}`,
      });
      expect(again.replayed).toBe(true);
      expect(await redis.zcard(keys.workflowRuns('bus-sub'))).toBe(1);
    } finally {
      await api.close();
      await dropPrefix(redisUrl(), lonely);
    }
  });
});
