/**
 * Review of issue 8 (masking): `maskDeep` masks every string value of a step's outputs but not
 * the keys, and a function step's outputs are any JSON object. A secret used as a key (a map of
 * tokens to scopes, say) reaches the run document in clear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmExecutor } from '../../src/workers/vm/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

const TOKEN = 'tok-77e1d2c3b4a5f6e7d8c9';
const SECRETS: Record<string, string> = { TOKEN };

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    executors: [new VmExecutor({ poolSize: 0 })],
    secrets: {
      async get(names) {
        return Object.fromEntries(names.filter((n) => n in SECRETS).map((n) => [n, SECRETS[n]!]));
      },
    },
  });
});
afterAll(async () => {
  await engine.close();
});

describe('masking output keys (review 8)', () => {
  it("a secret used as a key of a function step's outputs is masked in the run document", async () => {
    const run = await engine.submit({
      name: 'output-key',
      steps: {
        f: {
          env: { T: '${{ secrets.TOKEN }}' },
          function: 'export default async (ctx) => ({ scopes: { [ctx.env.T]: "write" }, value: ctx.env.T })',
        },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.f!.status).toBe('succeeded');
    const doc = await engine.request('GET', `/v1/runs/${run.id}`);
    expect(doc.body.steps.f.outputs.value).toBe('***');
    expect(JSON.stringify(doc.body)).not.toContain(TOKEN);
  });
});
