/**
 * Conveyor on a three-master Redis Cluster the test starts itself (`redis-server
 * --cluster-enabled yes`, `redis-cli --cluster create`): a real `conveyor api` and `conveyor
 * worker` given REDIS_CLUSTER_NODES run a diamond with outputs, stream its events over SSE to
 * `run.succeeded`, start a run from an event trigger, list the run's jobs on the dashboard, and
 * keep every key in the one slot of `{prefix}`. Every node requires a password (REDIS_PASSWORD
 * reaches them all) and runs with eviction and AOF off, so the start-up warnings name every master.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testPrefix } from '../support/prefix.ts';
import { type ConveyorProcess, spawnConveyor } from '../support/process.ts';
import { eventually } from '../support/processes.ts';
import { type RedisClusterHandle, startRedisCluster } from '../support/redis-cluster.ts';
import { freePort } from '../support/redis-server.ts';
import { readSse } from '../support/sse.ts';

const prefix = testPrefix(import.meta.url);
/** Every node requires it: REDIS_PASSWORD must reach the cluster's nodes. */
const PASSWORD = 'cluster-Pa55-word';
let cluster: RedisClusterHandle;
let api: ConveyorProcess;
let worker: ConveyorProcess;
let base: string;

async function post(path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function get(path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`);
  expect(res.status, path).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** Follows a run's SSE stream to its terminal event; returns the event types in order. */
async function eventTypes(runId: string): Promise<string[]> {
  const { messages } = await readSse(`${base}/v1/runs/${runId}/events`, {
    stop: (m) => ['run.succeeded', 'run.failed', 'run.cancelled'].includes(m.event ?? ''),
  });
  return messages.map((m) => m.event ?? '');
}

beforeAll(async () => {
  cluster = await startRedisCluster({ args: ['--maxmemory-policy', 'allkeys-lru'], password: PASSWORD });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = {
    REDIS_URL: undefined,
    REDIS_CLUSTER_NODES: cluster.nodes.join(','),
    REDIS_PASSWORD: PASSWORD,
    CONVEYOR_PREFIX: prefix,
    PORT: String(port),
    WORKER_EXECUTORS: 'local',
  };
  api = spawnConveyor('api', env);
  worker = spawnConveyor('worker', env);
  await Promise.all([api.line(/API listening/), worker.line(/worker ready/)]);
}, 60_000);

afterAll(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await cluster?.stop();
});

describe('Conveyor on a three-master Redis Cluster', () => {
  it('warns at start that the masters may evict keys and run without AOF', async () => {
    for (const proc of [api, worker]) {
      const evict = JSON.parse(await proc.line(/REDIS MAY EVICT/));
      expect(Object.keys(evict.nodes).sort()).toEqual([...cluster.nodes].sort());
      expect(evict.level).toBe(40);
      const aof = JSON.parse(await proc.line(/REDIS AOF IS OFF/));
      expect([...aof.nodes].sort()).toEqual([...cluster.nodes].sort());
      expect(proc.output()).not.toMatch(/private redis-server/);
    }
  });

  it('runs a diamond with outputs, streaming its events over SSE to run.succeeded', async () => {
    const submitted = await post('/v1/runs', {
      workflow: {
        name: 'cluster-diamond',
        steps: {
          a: { run: 'echo "n=21" >> "$CONVEYOR_OUTPUT"' },
          b: { needs: ['a'], run: 'echo "left=$((${{ steps.a.outputs.n }} * 2))" >> "$CONVEYOR_OUTPUT"' },
          c: { needs: ['a'], run: 'echo "right=${{ steps.a.outputs.n }}" >> "$CONVEYOR_OUTPUT"' },
          d: { needs: ['b', 'c'], run: 'echo "${{ steps.b.outputs.left }}+${{ steps.c.outputs.right }}"' },
        },
      },
    });
    expect(submitted.status).toBe(202);
    const runId = submitted.body.id as string;
    const types = await eventTypes(runId);
    expect(types[0]).toBe('run.queued');
    expect(types.at(-1)).toBe('run.succeeded');
    expect(types.filter((t) => t === 'step.succeeded')).toHaveLength(4);

    const run = await get(`/v1/runs/${runId}`);
    expect(run.status).toBe('succeeded');
    const steps = run.steps as Record<string, { status: string; outputs?: Record<string, string> }>;
    expect(steps.b).toMatchObject({ status: 'succeeded', outputs: { left: '42' } });
    expect(steps.c).toMatchObject({ status: 'succeeded', outputs: { right: '21' } });
    const log = await fetch(`${base}/v1/runs/${runId}/steps/d/logs`);
    expect(await log.text()).toBe('42+21\n');

    // The dashboard's JSON lists the run's step jobs in the completed list of steps-local.
    const board = await get('/admin/queues/api/queues?activeQueue=steps-local&status=completed&page=1');
    const queue = (board.queues as Array<{ name: string; jobs: Array<{ id: string }> }>).find(
      (q) => q.name === 'steps-local',
    );
    expect(queue?.jobs.map((j) => j.id).sort()).toEqual(['a', 'b', 'c', 'd'].map((s) => `${runId}.${s}`));
  });

  it('starts runs from an event trigger, and from an event a step emits (the bus consumer group)', async () => {
    const listener = await post('/v1/workflows', {
      name: 'cluster-listener',
      on: { event: ['cluster.ping'] },
      steps: {
        hear: {
          run: 'echo "heard ${{ trigger.payload.n }}"; echo \'{"type":"cluster.pong","payload":{"n":8}}\' >> "$CONVEYOR_EVENTS"',
        },
      },
    });
    expect(listener.status).toBe(201);
    const echo = await post('/v1/workflows', {
      name: 'cluster-echo',
      on: { event: ['cluster.pong'] },
      steps: { back: { run: 'echo "echoed ${{ trigger.payload.n }}"' } },
    });
    expect(echo.status).toBe(201);
    const event = await post('/v1/events/cluster.ping', { payload: { n: 7 } });
    expect(event.status).toBe(202);
    const runs = event.body.runs as Array<{ id: string; workflow: { name: string } }>;
    expect(runs.map((r) => r.workflow.name)).toEqual(['cluster-listener']);
    expect((await eventTypes(runs[0]!.id)).at(-1)).toBe('run.succeeded');
    expect(await (await fetch(`${base}/v1/runs/${runs[0]!.id}/steps/hear/logs`)).text()).toBe('heard 7\n');

    // The emitted event reaches the API's bus consumer (XREADGROUP on the cluster) and starts a run.
    let echoed: Array<{ id: string }> = [];
    await eventually(async () => {
      echoed = (await get('/v1/runs?workflow=cluster-echo')).runs as Array<{ id: string }>;
      return echoed.length > 0;
    }, 10_000);
    expect(echoed).toHaveLength(1);
    expect((await eventTypes(echoed[0]!.id)).at(-1)).toBe('run.succeeded');
    expect(await (await fetch(`${base}/v1/runs/${echoed[0]!.id}/steps/back/logs`)).text()).toBe('echoed 8\n');
  });

  it('a wrong REDIS_PASSWORD is one clear error: the process exits 1 instead of retrying', async () => {
    const wrong = spawnConveyor('worker', {
      REDIS_URL: undefined,
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      REDIS_PASSWORD: 'not-the-password',
      CONVEYOR_PREFIX: prefix,
    });
    expect(await wrong.exited).toBe(1);
    expect(wrong.output()).toMatch(/Redis refused the credentials \(WRONGPASS/);
    expect(wrong.output()).not.toContain('not-the-password');
  });

  it('keeps every key in the one slot of {prefix}, on one master', async () => {
    const clients = cluster.ports.map((port) => new Redis(port, '127.0.0.1', { password: PASSWORD }));
    try {
      const slot = Number(await clients[0]!.cluster('KEYSLOT', `{${prefix}}`));
      const sizes = await Promise.all(clients.map((c) => c.dbsize()));
      const inSlot = await Promise.all(clients.map((c) => c.cluster('COUNTKEYSINSLOT', slot)));
      const owner = inSlot.findIndex((n) => Number(n) > 0);
      expect(owner).toBeGreaterThanOrEqual(0);
      // Every key of the cluster is in that slot on its owner: none anywhere else.
      expect(sizes[owner]).toBeGreaterThan(20);
      expect(Number(inSlot[owner])).toBe(sizes[owner]);
      expect(sizes.filter((_, i) => i !== owner)).toEqual([0, 0]);
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await clients[owner]!.scan(cursor, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      expect(keys.every((k) => k.startsWith(`{${prefix}}:`))).toBe(true);
      expect(keys.some((k) => k.includes(':rec:run:'))).toBe(true);
      expect(keys.some((k) => k.includes(':steps-local:'))).toBe(true);
    } finally {
      for (const c of clients) c.disconnect();
    }
  });
});
