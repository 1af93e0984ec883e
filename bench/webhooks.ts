/**
 * Push webhooks (issue 10): a signed GitHub push over real HTTP, against a registry of ten
 * workflows of which one matches.
 *  (a) webhook acknowledged (request sent → 202 received), p50 / p99, vs starting the same
 *      workflow with POST /v1/workflows/:name/runs
 *  (b) webhook sent → the matching run's first step started, p50 / p99
 *  (c) sustained signed deliveries per second, 16 in flight, vs the same through the runs route
 *  (d), (e) the same API with 100 large workflows more (webhooks-large.ts): a push matching none
 *      or one of them while /healthz is polled, and GET /v1/workflows
 */
import { createHmac, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { startApi } from '../src/api/server.ts';
import { startWorker } from '../src/workers/worker.ts';
import { benchPrefix, NoopExecutor, percentile, round } from './support.ts';
import type { BenchContext, BenchRow, BenchSuite } from './types.ts';
import { largeRegistryRows } from './webhooks-large.ts';

const logger = pino({ level: 'silent' });
const SECRET = 'bench-secret';
const SEQUENTIAL = 200;
const SUSTAINED = 1000;
const IN_FLIGHT = 16;

/** A push shaped like GitHub's (one commit, three files). */
const payload = JSON.stringify({
  ref: 'refs/heads/main',
  before: 'a'.repeat(40),
  after: 'b'.repeat(40),
  repository: { full_name: 'bench/app', name: 'app' },
  pusher: { name: 'bench', email: 'bench@example.com' },
  commits: [
    {
      id: 'b'.repeat(40),
      message: 'bench',
      author: { name: 'bench', email: 'bench@example.com' },
      added: ['src/a.ts'],
      modified: ['src/b.ts', 'README.md'],
      removed: [],
    },
  ],
});
const signature = `sha256=${createHmac('sha256', SECRET).update(payload).digest('hex')}`;

const suite: BenchSuite = {
  name: 'webhooks',
  async run({ redisUrl }: BenchContext): Promise<BenchRow[]> {
    const prefix = benchPrefix('webhooks');
    const api = await startApi({ redisUrl, prefix, port: 0, logger, webhookSecrets: [SECRET] });
    const noop = new NoopExecutor();
    const started = new Map<string, () => void>();
    const startedAt = new Map<string, number>();
    noop.onStart = (step) => {
      startedAt.set(step.runId, performance.now());
      started.get(step.runId)?.();
    };
    const worker = await startWorker({ redisUrl, prefix, executors: [noop], concurrency: 100, logger });
    let closing: Promise<void> | undefined;
    const closeWorker = () => {
      closing ??= worker.close();
      return closing;
    };
    const base = `http://127.0.0.1:${api.port}`;
    const post = async (path: string, body: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
      if (res.status !== 202 && res.status !== 201)
        throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as { runs?: Array<{ id: string }>; id?: string };
    };
    const deliver = () =>
      post('/v1/hooks/github', payload, {
        'x-github-event': 'push',
        'x-github-delivery': randomUUID(),
        'x-hub-signature-256': signature,
      });
    const runRoute = () => post('/v1/workflows/bench-push/runs', '{}');
    try {
      for (let i = 0; i < 10; i++) {
        const repository = i === 0 ? 'bench/app' : `bench/other-${i}`;
        const name = i === 0 ? 'bench-push' : `bench-other-${i}`;
        await post(
          '/v1/workflows',
          JSON.stringify({
            name,
            on: { push: { repository, branches: ['main'], paths: ['src/**'] } },
            steps: { a: { run: 'true' } },
          }),
        );
      }
      // Warm-up: connections, script caches, the JIT.
      for (let i = 0; i < 50; i++) {
        await deliver();
        await runRoute();
      }

      const acked: number[] = [];
      const firstStep: number[] = [];
      for (let i = 0; i < SEQUENTIAL; i++) {
        const t0 = performance.now();
        const body = await deliver();
        acked.push(performance.now() - t0);
        const runId = body.runs![0]!.id;
        if (!startedAt.has(runId)) await new Promise<void>((resolve) => started.set(runId, resolve));
        firstStep.push(startedAt.get(runId)! - t0);
        started.delete(runId);
      }
      const viaRoute: number[] = [];
      for (let i = 0; i < SEQUENTIAL; i++) {
        const t0 = performance.now();
        await runRoute();
        viaRoute.push(performance.now() - t0);
      }

      const sustained = async (send: () => Promise<unknown>) => {
        let next = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: IN_FLIGHT }, async () => {
            while (next++ < SUSTAINED) await send();
          }),
        );
        return SUSTAINED / ((performance.now() - t0) / 1000);
      };
      const hooksPerSecond = await sustained(deliver);
      const routePerSecond = await sustained(runRoute);
      // No worker for (d) and (e): the 3,000-step runs they start stay queued.
      await closeWorker();
      const large = await largeRegistryRows(api, base, SECRET);

      return [
        {
          metric: '(a) webhook acknowledged, p50',
          value: round(percentile(acked, 50)),
          unit: 'ms',
          peer: 'POST /v1/workflows/:name/runs',
          peerValue: round(percentile(viaRoute, 50)),
          target: '≤ 50 ms',
        },
        {
          metric: '(a) webhook acknowledged, p99',
          value: round(percentile(acked, 99)),
          unit: 'ms',
          peer: 'POST /v1/workflows/:name/runs',
          peerValue: round(percentile(viaRoute, 99)),
          target: '≤ 50 ms',
        },
        {
          metric: '(b) webhook → first step started, p50',
          value: round(percentile(firstStep, 50)),
          unit: 'ms',
        },
        {
          metric: '(b) webhook → first step started, p99',
          value: round(percentile(firstStep, 99)),
          unit: 'ms',
        },
        {
          metric: `(c) sustained signed deliveries, ${IN_FLIGHT} in flight`,
          value: round(hooksPerSecond, 0),
          unit: 'deliveries/s',
          peer: 'runs route, same concurrency',
          peerValue: round(routePerSecond, 0),
        },
        ...large,
      ];
    } finally {
      await closeWorker();
      await api.close();
    }
  },
};

export default suite;
