import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
let dir: string;
const children: ChildProcess[] = [];

/** A real worker process, as `npx conveyor worker` runs it, with short locks for fast recovery. */
function spawnWorker(prefix: string): ChildProcess {
  const child = spawn(process.execPath, ['bin/conveyor.mjs', 'worker'], {
    env: {
      ...process.env,
      REDIS_URL: redisUrl(),
      CONVEYOR_PREFIX: prefix,
      WORKER_EXECUTORS: 'local',
      WORKER_LOCK_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      LOG_LEVEL: 'silent',
    },
    stdio: 'ignore',
  });
  children.push(child);
  return child;
}

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { worker: false });
  dir = mkdtempSync(join(tmpdir(), 'conveyor-crash-'));
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  try {
    process.kill(-Number(readFileSync(join(dir, 'b.pid'), 'utf8')), 'SIGKILL');
  } catch {
    // already gone
  }
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a worker killed with SIGKILL mid-run', () => {
  it('is replaced: finished steps do not run again, the interrupted one does, the record stays consistent', async () => {
    const order = join(dir, 'order');
    const run = await engine.submit({
      name: 'crash',
      steps: {
        a: { run: `echo a >> ${order}` },
        b: {
          needs: ['a'],
          run: `echo b >> ${order}; echo $$ > ${dir}/b.pid; [ -f ${dir}/second ] || { touch ${dir}/second; echo waiting; sleep 120; }`,
        },
        c: { needs: ['b'], run: `echo c >> ${order}` },
        d: { needs: ['a'], run: `echo d >> ${order}` },
      },
    });
    const first = spawnWorker(engine.prefix);

    // Kill the worker once b's process has printed.
    await engine.waitForEvent(run.id, (e) => e.type === 'step.log' && e.data.step === 'b');
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    // The orphaned step process would otherwise keep sleeping; the worker died, not the host.
    process.kill(-Number(readFileSync(join(dir, 'b.pid'), 'utf8')), 'SIGKILL');

    spawnWorker(engine.prefix);
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(Object.values(done.steps).map((s) => s.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
    const lines = readFileSync(order, 'utf8').trim().split('\n').sort();
    expect(lines).toEqual(['a', 'b', 'b', 'c', 'd']);
    const started = events.filter((e) => e.type === 'step.started').map((e) => e.data.step);
    expect(started.filter((s) => s === 'b')).toHaveLength(2);
    expect(started.filter((s) => s === 'a')).toHaveLength(1);
    for (const step of ['a', 'b', 'c', 'd']) {
      expect(events.filter((e) => e.type === 'step.succeeded' && e.data.step === step)).toHaveLength(1);
    }
    expect(
      events.filter((e) => e.type.startsWith('run.') && e.type !== 'run.queued' && e.type !== 'run.started'),
    ).toHaveLength(1);
    expect(events.at(-1)!.type).toBe('run.succeeded');
  });
});
