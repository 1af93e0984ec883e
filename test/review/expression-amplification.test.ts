/**
 * Review of issue 8 ("small requests that cost gigabytes"): the limits bound the definition's
 * text, not what its expressions evaluate to in the worker. `format()` with 1,000 `{0}` (3 KB,
 * under the 4 KiB expression limit) repeats a 20 KB input 1,000 times: a 23 KB request makes the
 * worker build a 20 MB environment value, then fail the step as `internal` "spawn E2BIG". A
 * 64 KiB `run` holds about 20 such expressions and the input can be larger, so one step can ask
 * the worker for gigabytes (and a standalone process is the API too).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url));
});
afterAll(async () => {
  await engine.close();
});

describe('expression output is bounded (review 8)', () => {
  it('a 3 KB format() of a 20 KB input is refused or fails with a clear error, holding no 20 MB value', async () => {
    const expression = `format('${'{0}'.repeat(1000)}', inputs.x)`;
    const body = {
      workflow: {
        name: 'amplify',
        inputs: { x: { type: 'string' } },
        steps: { s: { run: `printf '%s' "\${{ ${expression} }}" | wc -c` } },
      },
      inputs: { x: 'x'.repeat(20_000) },
    };
    // Warm up first: the submission thread and the worker's first run cost memory of their own.
    const warm = await engine.request('POST', '/v1/runs', {
      workflow: { name: 'warm', steps: { s: { run: 'true' } } },
    });
    await engine.waitForRun(warm.body.id);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 2);
    try {
      const res = await engine.request('POST', '/v1/runs', body);
      if (res.status === 202) {
        const { run } = await engine.waitForRun(res.body.id);
        const error = run.steps.s!.error;
        // A known condition, named: not an unforeseen `internal` error from spawn.
        expect(error?.code).not.toBe('internal');
        expect(error?.message).toMatch(/format\(\) would build/);
      } else {
        expect(res.status).toBe(400);
      }
    } finally {
      clearInterval(sampler);
    }
    // The issue's own yardstick for refused bombs: RSS growth under 50 MB.
    expect((peak - before) / 1e6).toBeLessThan(50);
  });
});
