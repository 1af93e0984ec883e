/**
 * Bounded submissions (issue 8): while the largest definitions the limits allow are submitted
 * over real HTTP, how long does `/healthz` wait, and how long is the API's event loop blocked?
 * Target: `/healthz` within 100 ms throughout. Also the time to refuse the alias fan-in bomb.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import pino from 'pino';
import { stringify } from 'yaml';
import { startApi } from '../src/api/server.ts';
import { LIMITS } from '../src/flows/limits.ts';
import { dropPrefix } from '../test/support/prefix.ts';
import { benchPrefix, round } from './support.ts';
import type { BenchContext, BenchRow, BenchSuite } from './types.ts';

type Steps = Record<string, { needs?: string[]; run: string }>;

/** `LIMITS.steps` steps, each needing the two before it: as many steps, edges and gates as allowed. */
function widest(): { name: string; steps: Steps } {
  const steps: Steps = {};
  for (let i = 0; i < LIMITS.steps; i++) {
    const needs = [i - 1, i - 2].filter((n) => n >= 0).map((n) => `s${n}`);
    steps[`s${i}`] = {
      needs,
      run: i ? 'echo "${{ steps.s0.outputs.x }}"' : 'echo x=1 >> "$CONVEYOR_OUTPUT"',
    };
  }
  return { name: 'widest', steps };
}

/** A chain in YAML, as long as the body limit allows. */
function yamlNearLimit(): string {
  let n = 1000;
  const make = (k: number) => {
    const steps: Steps = {};
    for (let i = 0; i < k; i++)
      steps[`step-${i}`] = { needs: i ? [`step-${i - 1}`] : [], run: `echo ${i} ${'x'.repeat(40)}` };
    return stringify({ workflow: { name: 'yaml-chain', steps } });
  };
  while (n < LIMITS.steps && Buffer.byteLength(make(n + 500)) < LIMITS.bodyBytes - 1024) n += 500;
  return make(n);
}

/** `LIMITS.steps - 2` roots and two steps that each need all of them: the most edges into the fewest steps. */
function dense(): { name: string; steps: Steps } {
  const roots = Array.from({ length: LIMITS.steps - 2 }, (_, i) => `r${i}`);
  const steps: Steps = Object.fromEntries(roots.map((id) => [id, { run: 'true' }]));
  steps.a = { needs: roots, run: 'true' };
  steps.b = { needs: roots, run: 'true' };
  return { name: 'dense', steps };
}

function aliasBomb(): string {
  const roots = Array.from({ length: 5000 }, (_, i) => `root-${String(i).padStart(5, '0')}`);
  return [
    'workflow:',
    '  name: bomb',
    '  steps:',
    ...roots.map((id) => `    ${id}: { run: x }`),
    `    fan-0: { run: x, needs: &all [${roots.join(', ')}] }`,
    ...Array.from({ length: 99 }, (_, i) => `    fan-${i + 1}: { run: x, needs: *all }`),
  ].join('\n');
}

/** Polls `/healthz` every 10 ms during `work`; returns the worst answer time and loop delay. */
async function whileSubmitting(base: string, work: () => Promise<void>) {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  let worst = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const t0 = performance.now();
      await (await fetch(`${base}/healthz`)).text();
      worst = Math.max(worst, performance.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  loop.enable();
  const t0 = performance.now();
  await work();
  const took = performance.now() - t0;
  loop.disable();
  polling = false;
  await poll;
  return { healthz: worst, loop: loop.max / 1e6, took };
}

const suite: BenchSuite = {
  name: 'limits',
  async run({ redisUrl }: BenchContext): Promise<BenchRow[]> {
    const prefix = benchPrefix('limits');
    const api = await startApi({ redisUrl, prefix, port: 0, logger: pino({ level: 'silent' }) });
    const base = `http://127.0.0.1:${api.port}`;
    const post = async (body: string, type: string, expected: number, path = '/v1/runs') => {
      const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
      if (res.status !== expected)
        throw new Error(`expected ${expected}, got ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    };
    const rows: BenchRow[] = [];
    try {
      // Warm up the submission thread and the JIT.
      await post(
        JSON.stringify({ workflow: { name: 'w', steps: { a: { run: 'x' } } } }),
        'application/json',
        202,
      );
      const denseJson = JSON.stringify(dense());
      const cases: Array<[string, string, string, number, string?]> = [
        ['dense (9,998 roots, 2 fan-ins): register', denseJson, 'application/json', 201, '/v1/workflows'],
        ['dense: run of the stored version', '{}', 'application/json', 202, '/v1/workflows/dense/runs'],
        [
          'dense: dry run of the stored version',
          '{}',
          'application/json',
          200,
          '/v1/workflows/dense/runs?dryRun=true',
        ],
        ['dense: ad-hoc run', JSON.stringify({ workflow: dense() }), 'application/json', 202],
        [
          'dense: ad-hoc dry run',
          JSON.stringify({ workflow: dense() }),
          'application/json',
          200,
          '/v1/runs?dryRun=true',
        ],
        [
          `${LIMITS.steps} steps, ${2 * LIMITS.steps - 3} needs (JSON)`,
          JSON.stringify({ workflow: widest() }),
          'application/json',
          202,
        ],
        ['YAML chain near 1 MiB', yamlNearLimit(), 'application/yaml', 202],
        ['alias fan-in bomb (refused)', aliasBomb(), 'application/yaml', 400],
      ];
      for (const [what, body, type, status, path] of cases) {
        const m = await whileSubmitting(base, () => post(body, type, status, path));
        rows.push({
          metric: `${what}: worst /healthz`,
          value: round(m.healthz, 1),
          unit: 'ms',
          target: '≤ 100 ms',
        });
        rows.push({ metric: `${what}: worst event-loop delay`, value: round(m.loop, 1), unit: 'ms' });
        rows.push({
          metric: `${what}: answered after`,
          value: round(m.took),
          unit: 'ms',
          target: status === 400 ? '≤ 1000 ms' : undefined,
        });
      }
    } finally {
      await api.close();
      await dropPrefix(redisUrl, prefix);
    }
    return rows;
  },
};

export default suite;
