import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, get, type IncomingMessage } from 'node:http';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { FEED_CONNECTION_NAME } from '../../src/store/event-feed.ts';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { type ConveyorWorker, startWorker } from '../../src/workers/worker.ts';
import { waitForRunEvent } from '../support/engine.ts';
import { eventually } from '../support/processes.ts';
import { spawnRedis } from '../support/redis-server.ts';

// A Redis of this file's own: its client count and maxclients are what these tests measure.
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let admin: Redis;
let api: ConveyorApi;
let worker: ConveyorWorker;
const prefix = 't-sse-scale';
const logger = pino({ level: 'silent' });
const CLIENTS = 5000;
const run = promisify(execFile);

beforeAll(async () => {
  redis = await spawnRedis({ args: ['--maxclients', '10000'] });
  admin = new Redis(redis.url);
  api = await startApi({ redisUrl: redis.url, prefix, port: 0, logger });
  worker = await startWorker({ redisUrl: redis.url, prefix, executors: [new LocalExecutor()], logger });
});
afterAll(async () => {
  await worker?.close();
  await api?.close();
  admin?.disconnect();
  await redis?.stop();
});

async function connectedClients(): Promise<number> {
  return Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))![1]);
}

/** Connections named as the event feed's shared reader. */
async function feedReaders(): Promise<number> {
  const list = (await admin.client('LIST')) as string;
  return list.split('\n').filter((line) => line.includes(` name=${FEED_CONNECTION_NAME} `)).length;
}

// The client count as a whole is only roughly flat: on a loaded machine BullMQ's watchdog resets
// a worker's blocking connection whose BZPOPMIN outlived its timeout, and a reset in progress is
// one client fewer or more for a moment. A connection per stream or per run would add thousands
// or dozens.
const FEW = 5;

async function startSleeper(name: string): Promise<string> {
  const res = await api.app.request('/v1/runs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ workflow: { name, steps: { wait: { run: 'sleep 60' } } } }),
  });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  // Wait until it runs (own connections, closed before anything is counted).
  await waitForRunEvent(api, id, (e) => e.type === 'step.started');
  return id;
}

/** One SSE client on a real socket: resolves `opened` at its first event, `ended` with every event name. */
function client(url: string, agent: Agent) {
  let opened!: () => void;
  const openedP = new Promise<void>((resolve) => {
    opened = resolve;
  });
  const ended = new Promise<{ status: number; events: string[] }>((resolve, reject) => {
    get(url, { agent, headers: { accept: 'text/event-stream' } }, (res: IncomingMessage) => {
      const events: string[] = [];
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let cut = buffer.indexOf('\n\n');
        while (cut >= 0) {
          const name = /^event: (.*)$/m.exec(buffer.slice(0, cut))?.[1];
          if (name) events.push(name);
          buffer = buffer.slice(cut + 2);
          cut = buffer.indexOf('\n\n');
        }
        if (events.length) opened();
      });
      res.on('end', () => resolve({ status: res.statusCode!, events }));
      res.on('error', reject);
    }).on('error', reject);
  });
  return { opened: openedP, ended };
}

describe('SSE at scale', () => {
  it('listens with a backlog that holds a surge of connections while the event loop accepts them', async () => {
    const port = new URL(api.url!).port;
    const { stdout } = await run('ss', ['-ltnH', `sport = :${port}`]);
    // A listening socket's Send-Q is its backlog (capped by net.core.somaxconn).
    const backlog = Number(stdout.trim().split(/\s+/)[2]);
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    expect(backlog).toBe(Math.min(4096, somaxconn));
    expect(backlog).toBeGreaterThan(511); // Node's default, which a surge of streams overflows
  });

  it('5,000 concurrent streams on one API process share one Redis reader', async () => {
    const runId = await startSleeper('many-streams');
    const url = `${api.url}/v1/runs/${runId}/events`;
    const agent = new Agent({ maxSockets: Number.POSITIVE_INFINITY, keepAlive: false });
    // One stream first, so the shared reader is connected before the baseline is taken.
    const warm = client(url, agent);
    await warm.opened;
    const before = await connectedClients();

    const clients = Array.from({ length: CLIENTS }, () => client(url, agent));
    await Promise.all(clients.map((c) => c.opened));
    // A stream registers with the shared reader just after its replay reaches the client.
    await eventually(() => api.deps.events.followers >= CLIENTS + 1, 5000);
    expect(api.deps.events.followers).toBe(CLIENTS + 1);
    expect(await feedReaders()).toBe(1);
    expect((await connectedClients()) - before).toBeLessThanOrEqual(FEW); // not +5,000

    // The run's end reaches every stream, which then closes.
    const cancel = await api.app.request(`/v1/runs/${runId}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    const results = await Promise.all([warm, ...clients].map((c) => c.ended));
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.events.at(-1)).toBe('run.cancelled');
    }
    expect(api.deps.events.followers).toBe(0);
    agent.destroy();
  }, 120_000);

  it('multiplexes many runs on the one reader: each stream gets its run, whole, in order, once', async () => {
    const agent = new Agent({ maxSockets: Number.POSITIVE_INFINITY });
    const before = await connectedClients();
    const ids: string[] = [];
    const streams: Array<ReturnType<typeof client>> = [];
    for (let i = 0; i < 20; i++) {
      const steps = { a: { run: `sleep 0.${i % 5}` }, b: { needs: ['a'], run: 'echo b' } };
      const res = await api.app.request('/v1/runs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ workflow: { name: `mux-${i}`, steps } }),
      });
      const { id } = (await res.json()) as { id: string };
      ids.push(id);
      // Streams join while the shared read is blocked on the runs before them.
      for (let j = 0; j < 3; j++) streams.push(client(`${api.url}/v1/runs/${id}/events`, agent));
    }
    const results = await Promise.all(streams.map((c) => c.ended));
    for (const [n, r] of results.entries()) {
      const stored = await api.deps.store.readEvents(ids[Math.floor(n / 3)]!);
      expect(r.events).toEqual(stored.map((e) => e.type));
    }
    expect(await feedReaders()).toBe(1);
    expect((await connectedClients()) - before).toBeLessThanOrEqual(FEW); // not +20 or +60
    agent.destroy();
  });

  it('answers 503 to a new stream while Redis refuses connections, and serves it once it accepts again', async () => {
    const runId = (await startApiRun()).id;
    // A second API whose shared reader has not connected yet meets Redis at maxclients.
    const other = await startApi({ redisUrl: redis.url, prefix, port: 0, logger });
    try {
      await admin.config('SET', 'maxclients', String(await connectedClients()));
      const refused = await fetch(`${other.url}/v1/runs/${runId}/events`);
      expect(refused.status).toBe(503);
      expect(await refused.json()).toMatchObject({
        error: { code: 'unavailable', message: expect.any(String) },
      });
      await admin.config('SET', 'maxclients', '10000');
      const served = await fetch(`${other.url}/v1/runs/${runId}/events`);
      expect(served.status).toBe(200);
      expect(await served.text()).toContain('event: run.succeeded');
    } finally {
      await admin.config('SET', 'maxclients', '10000');
      await other.close();
    }
  });
});

async function startApiRun(): Promise<{ id: string }> {
  const res = await api.app.request('/v1/runs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ workflow: { name: 'quick', steps: { a: { run: 'true' } } } }),
  });
  const run = (await res.json()) as { id: string };
  await waitForRunEvent(api, run.id, (e) => e.type === 'run.succeeded');
  return run;
}
