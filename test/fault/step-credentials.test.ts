import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { killAllWorkers, spawnWorker } from '../support/worker-process.ts';

let engine: TestEngine;
const key = randomBytes(32).toString('base64');

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
});
afterAll(async () => {
  await killAllWorkers();
  await engine.close();
});

/** A step that looks for the key in every environment it can read, and says who it is. */
const hunt = [
  'id -u',
  `for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < "$f" 2>/dev/null; done | grep -c CONVEYOR_SECRET_KEY || true`,
  'ps -e -o pid= | wc -l',
].join('\n');

describe("the worker's credentials are out of a local step's reach", () => {
  it.runIf(process.getuid?.() === 0)(
    'as WORKER_RUN_AS, a step finds the secret key in no /proc/*/environ',
    async () => {
      spawnWorker(engine.prefix, { CONVEYOR_SECRET_KEY: key, WORKER_RUN_AS: 'nobody' });
      const run = await engine.submit({ name: 'hunt', steps: { s: { run: hunt } } });
      const { run: done } = await engine.waitForRun(run.id);
      expect(done.steps.s!.status).toBe('succeeded');
      const [uid, found, processes] = (await engine.request('GET', `/v1/runs/${run.id}/steps/s/logs`)).body
        .trim()
        .split('\n');
      expect(uid).not.toBe('0');
      expect(found).toBe('0');
      // Its own PID namespace: it sees its own few processes, not the worker's.
      expect(Number(processes)).toBeLessThan(10);
      expect(JSON.stringify(done)).not.toContain(key);
    },
  );
});
