/**
 * Push webhooks against a registry of large workflows (the `webhooks` suite's (d) and (e)): 100
 * registered workflows of about 1 MiB stored each (a 3,000-step chain), one push matching none
 * of them and one matching one, while `/healthz` is polled; and `GET /v1/workflows` over them.
 * Peers, measured in the same run: what matching and the listing read before summaries were
 * stored (every latest version read and parsed whole; the listing one name at a time).
 */
import { createHmac, randomUUID } from 'node:crypto';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { ConveyorApi } from '../src/api/server.ts';
import { percentile, round } from './support.ts';
import type { BenchRow } from './types.ts';

const WORKFLOWS = 100;
const STEPS = 3000;
const DELIVERIES = 20;
const MATCHED_DELIVERIES = 5;
const LISTINGS = 20;

const nameOf = (i: number) => `bench-big-${String(i).padStart(3, '0')}`;
const repositoryOf = (i: number) => `bench/big-${String(i).padStart(3, '0')}`;

function bigDefinition(i: number) {
  const steps: Record<string, { needs: string[]; run: string }> = {};
  for (let s = 0; s < STEPS; s++) steps[`s${s}`] = { needs: s ? [`s${s - 1}`] : [], run: `echo step ${s}` };
  return {
    name: nameOf(i),
    description: `a ${STEPS}-step chain`,
    on: { push: { repository: repositoryOf(i), branches: ['main'] } },
    steps,
  };
}

function pushBody(repository: string): string {
  return JSON.stringify({
    ref: 'refs/heads/main',
    before: 'a'.repeat(40),
    after: 'b'.repeat(40),
    repository: { full_name: repository, name: repository.split('/')[1] },
    pusher: { name: 'bench', email: 'bench@example.com' },
    commits: [],
  });
}

/** Polls `/healthz` every 10 ms during `work`; the worst answer time and event-loop delay. */
async function whilePolled<T>(base: string, work: () => Promise<T>) {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  let worst = 0;
  let failed = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const t0 = performance.now();
      // A loop blocked for seconds can see its kept-alive socket reset: counted as that long.
      await fetch(`${base}/healthz`)
        .then((res) => res.text())
        .catch(() => failed++);
      worst = Math.max(worst, performance.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  loop.enable();
  const result = await work();
  loop.disable();
  polling = false;
  await poll;
  return { result, healthz: worst, failed, loop: loop.max / 1e6 };
}

/**
 * Registers the first workflow through the API and copies its stored hash to the 99 others,
 * names and repositories replaced (same length, so the stored JSON stays valid): what 99 more
 * registrations would store, without 99 more validations of 3,000 steps.
 */
async function registerLarge(api: ConveyorApi, base: string): Promise<number> {
  const res = await fetch(`${base}/v1/workflows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(bigDefinition(0)),
  });
  if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`);
  const { redis, store } = api.deps;
  const fields = await redis.hgetall(store.keys.workflow(nameOf(0)));
  for (let i = 1; i < WORKFLOWS; i++) {
    const copy = Object.fromEntries(
      Object.entries(fields).map(([field, value]) => [
        field,
        value.replaceAll(nameOf(0), nameOf(i)).replaceAll(repositoryOf(0), repositoryOf(i)),
      ]),
    );
    await redis
      .multi()
      .hset(store.keys.workflow(nameOf(i)), copy)
      .set(store.keys.workflowSeq(nameOf(i)), '1')
      .sadd(store.keys.workflows(), nameOf(i))
      .exec();
  }
  return Buffer.byteLength(fields['v:1']!);
}

/** What matching read before summaries: every latest version, read and parsed whole. */
async function readAllVersions(api: ConveyorApi): Promise<number> {
  const { redis, store } = api.deps;
  const names = await redis.smembers(store.keys.workflows());
  const latest = redis.pipeline();
  for (const name of names) latest.hget(store.keys.workflow(name), 'latest');
  const numbers = ((await latest.exec()) ?? []).map(([, n]) => Number(n));
  const reads = redis.pipeline();
  names.forEach((name, i) => reads.hget(store.keys.workflow(name), `v:${numbers[i]}`));
  let parsed = 0;
  for (const [, raw] of (await reads.exec()) ?? []) if (typeof raw === 'string' && JSON.parse(raw)) parsed++;
  return parsed;
}

/** What the listing read before summaries: each name's latest version in turn, parsed whole. */
async function listOneByOne(api: ConveyorApi): Promise<number> {
  const { redis, store } = api.deps;
  const names = (await redis.smembers(store.keys.workflows())).sort();
  let listed = 0;
  for (const name of names) {
    const key = store.keys.workflow(name);
    const raw = await redis.hget(key, `v:${await redis.hget(key, 'latest')}`);
    if (raw && JSON.parse(raw)) listed++;
  }
  return listed;
}

async function timed(n: number, work: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await work();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Rows (d) and (e), on an API with no worker (the matched runs stay queued). */
export async function largeRegistryRows(api: ConveyorApi, base: string, secret: string): Promise<BenchRow[]> {
  const storedBytes = await registerLarge(api, base);
  const deliver = async (repository: string) => {
    const body = pushBody(repository);
    const res = await fetch(`${base}/v1/hooks/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-github-delivery': randomUUID(),
        'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
      },
      body,
    });
    if (res.status !== 202) throw new Error(`webhook: ${res.status} ${await res.text()}`);
    return (await res.json()) as { runs: unknown[] };
  };
  const size = `${WORKFLOWS} workflows of ${round(storedBytes / 2 ** 20, 2)} MiB stored`;
  // Warm-up: the summary path, the old path and the listing once each.
  await deliver('bench/none');
  await readAllVersions(api);

  const none = await whilePolled(base, () => timed(DELIVERIES, () => deliver('bench/none')));
  const before = await whilePolled(base, () => timed(DELIVERIES, () => readAllVersions(api)));
  const one = await whilePolled(base, () => timed(MATCHED_DELIVERIES, () => deliver(repositoryOf(42))));
  const viaRoute = await timed(MATCHED_DELIVERIES, async () => {
    const res = await fetch(`${base}/v1/workflows/${nameOf(42)}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    if (res.status !== 202) throw new Error(`run: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  });
  const listed = await timed(LISTINGS, async () => (await fetch(`${base}/v1/workflows`)).arrayBuffer());
  const listedBefore = await timed(LISTINGS, () => listOneByOne(api));

  return [
    {
      metric: `(d) push matching none of ${size}: acknowledged, p50`,
      value: round(percentile(none.result, 50)),
      unit: 'ms',
      peer: 'reading and parsing every latest version (matching before summaries)',
      peerValue: round(percentile(before.result, 50)),
    },
    {
      metric: '(d) same: /healthz requests failed',
      value: none.failed,
      unit: 'requests',
      peer: 'while reading and parsing every latest version',
      peerValue: before.failed,
    },
    {
      metric: '(d) same: worst /healthz',
      value: round(none.healthz, 1),
      unit: 'ms',
      peer: 'while reading and parsing every latest version',
      peerValue: round(before.healthz, 1),
      target: '≤ 100 ms',
    },
    {
      metric: '(d) same: worst event-loop delay',
      value: round(none.loop, 1),
      unit: 'ms',
      peer: 'while reading and parsing every latest version',
      peerValue: round(before.loop, 1),
    },
    {
      metric: `(d) push matching one of them (a ${STEPS}-step run started), acknowledged, p50`,
      value: round(percentile(one.result, 50)),
      unit: 'ms',
      peer: 'POST /v1/workflows/:name/runs of that workflow',
      peerValue: round(percentile(viaRoute, 50)),
    },
    {
      metric: '(d) same: worst /healthz',
      value: round(one.healthz, 1),
      unit: 'ms',
      target: '≤ 100 ms',
    },
    {
      metric: `(e) GET /v1/workflows over ${WORKFLOWS + 10} workflows, p50`,
      value: round(percentile(listed, 50)),
      unit: 'ms',
      peer: 'each latest version read and parsed in turn (the listing before summaries)',
      peerValue: round(percentile(listedBefore, 50)),
    },
  ];
}
