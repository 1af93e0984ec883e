/**
 * A Redis Cluster failover under a running workflow: three masters with a replica each, a real
 * `conveyor api` and `conveyor worker`, and, while a step runs, the replica of the master that
 * owns `{prefix}`'s slot takes over (`CLUSTER FAILOVER`, the manual failover an operator or an
 * upgrade does). The run still succeeds, the SSE stream opened before the failover delivers every
 * event to `run.succeeded` once, and the keys are on the new master.
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
let cluster: RedisClusterHandle;
let api: ConveyorProcess;
let worker: ConveyorProcess;
let base: string;
const clients: Redis[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicas: 1 });
  for (const port of cluster.ports) clients.push(new Redis(port, '127.0.0.1'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = {
    REDIS_URL: undefined,
    REDIS_CLUSTER_NODES: cluster.nodes.slice(0, 3).join(','),
    CONVEYOR_PREFIX: prefix,
    PORT: String(port),
    WORKER_EXECUTORS: 'local',
  };
  api = spawnConveyor('api', env);
  worker = spawnConveyor('worker', env);
  await Promise.all([api.line(/API listening/), worker.line(/worker ready/)]);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all([api?.stop(), worker?.stop()]);
  await cluster?.stop();
});

/** The node (index) that serves `slot` as master, as node 0 sees the cluster. */
async function masterOf(slot: number): Promise<number> {
  const slots = await clients[0]!.cluster('SLOTS');
  const master = slots.find(([from, to]) => from <= slot && slot <= to)?.[2];
  if (!master) throw new Error(`no master serves slot ${slot}`);
  return cluster.ports.indexOf(master[1]);
}

describe('a Redis Cluster failover mid-run', () => {
  it('the run succeeds and its open SSE stream delivers every event once, to run.succeeded', async () => {
    const res = await fetch(`${base}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        workflow: {
          name: 'failover',
          steps: {
            a: { run: 'sleep 3; echo "v=a" >> "$CONVEYOR_OUTPUT"' },
            b: { needs: ['a'], run: 'echo "${{ steps.a.outputs.v }}b"' },
            c: { needs: ['a'], run: 'true' },
            d: { needs: ['b', 'c'], run: 'true' },
          },
        },
      }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const slot = Number(await clients[0]!.cluster('KEYSLOT', `{${prefix}}`));
    const before = await masterOf(slot);

    let failedOver: Promise<number> | undefined;
    const stream = await readSse(`${base}/v1/runs/${id}/events`, {
      stop: (m) => {
        // Step a is running: move the slot's master to its replica now.
        if (m.event === 'step.started' && !failedOver) failedOver = failover(before);
        return m.event === 'run.succeeded' || m.event === 'run.failed';
      },
    });
    const after = await failedOver!;
    expect(after).not.toBe(before);

    const types = stream.messages.map((m) => m.event);
    expect(types.at(-1)).toBe('run.succeeded');
    expect(types.filter((t) => t === 'step.succeeded')).toHaveLength(4);
    const ids = stream.messages.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    const log = await fetch(`${base}/v1/runs/${id}/steps/b/logs`);
    expect(await log.text()).toBe('ab\n');
    expect(Number(await clients[after]!.cluster('COUNTKEYSINSLOT', slot))).toBeGreaterThan(10);
  });
});

/** `CLUSTER FAILOVER` on the replica of node `master`; resolves with the replica's index once it is master. */
async function failover(master: number): Promise<number> {
  const masterId = String(await clients[master]!.cluster('MYID'));
  let replica = -1;
  for (let i = 0; i < clients.length; i++) {
    const role = (await clients[i]!.role()) as [string, string, number];
    if (role[0] === 'slave' && role[2] === cluster.ports[master]) replica = i;
  }
  if (replica < 0) throw new Error(`no replica of ${masterId}`);
  await clients[replica]!.cluster('FAILOVER');
  const promoted = async () => ((await clients[replica]!.role()) as [string])[0] === 'master';
  if (await eventually(promoted, 10_000)) return replica;
  throw new Error('the replica did not take over within 10 s');
}
