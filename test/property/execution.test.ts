import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { dagArbitrary } from '../support/random-dag.ts';

let engine: TestEngine;
let dir: string;
beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { concurrency: 16 });
  dir = mkdtempSync(join(tmpdir(), 'conveyor-prop-'));
});
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('random DAGs on real workers', () => {
  it('runs every step exactly once, and only after all of its needs', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(dagArbitrary(60, 3), async (dag) => {
        const file = join(dir, `order-${n++}`);
        const steps = Object.fromEntries(
          Object.entries(dag).map(([id, needs]) => [id, { needs, run: `echo ${id} >> ${file}` }]),
        );
        const run = await engine.submit({ name: 'random', steps });
        const { run: done } = await engine.waitForRun(run.id);
        expect(done.status).toBe('succeeded');
        const order = readFileSync(file, 'utf8').trim().split('\n');
        expect(order.length).toBe(Object.keys(dag).length);
        expect(new Set(order).size).toBe(order.length);
        const position = new Map(order.map((id, i) => [id, i]));
        for (const [id, needs] of Object.entries(dag)) {
          for (const need of needs) expect(position.get(need)!).toBeLessThan(position.get(id)!);
        }
      }),
      { numRuns: 8 },
    );
  });
});
