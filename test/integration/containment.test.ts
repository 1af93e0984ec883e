import { existsSync, mkdtempSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor, Workspaces } from '../../src/workers/local/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { marker, processesWithEnv } from '../support/processes.ts';

let engine: TestEngine;
let dir: string;
let workspaces: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-contain-'));
  workspaces = join(dir, 'workspaces');
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    // One slot: a step that wedged a slot (or libuv's threads) would stall every later step.
    concurrency: 1,
    executors: [
      new LocalExecutor({ killGraceMs: 1000, workspaces: new Workspaces({ baseDir: workspaces }) }),
    ],
  });
});
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

const fifo = (n: number) => ({
  run: `rm -f "$CONVEYOR_OUTPUT"; mkfifo "$CONVEYOR_OUTPUT"; echo fifo ${n}`,
  timeout: '5s',
});

describe('timeouts and cancel that hold whatever the step does', () => {
  it('refuses a FIFO as the outputs file, five times in a row, and the worker runs on', async () => {
    const run = await engine.submit({
      name: 'fifos',
      steps: {
        f1: fifo(1),
        f2: { needs: ['f1'], if: '${{ always() }}', ...fifo(2) },
        f3: { needs: ['f2'], if: '${{ always() }}', ...fifo(3) },
        f4: { needs: ['f3'], if: '${{ always() }}', ...fifo(4) },
        f5: { needs: ['f4'], if: '${{ always() }}', ...fifo(5) },
        plain: { needs: ['f5'], if: '${{ always() }}', run: 'echo "ok=yes" >> "$CONVEYOR_OUTPUT"' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    for (const id of ['f1', 'f2', 'f3', 'f4', 'f5']) {
      expect(done.steps[id]).toMatchObject({
        status: 'failed',
        error: { code: 'bad_output', message: '$CONVEYOR_OUTPUT is not a regular file' },
      });
    }
    expect(done.steps.plain).toMatchObject({ status: 'succeeded', outputs: { ok: 'yes' } });
  });

  it("refuses an outputs file replaced by a symbolic link (no reading the worker's files)", async () => {
    const run = await engine.submit({
      name: 'symlink',
      steps: { s: { run: 'rm -f "$CONVEYOR_OUTPUT"; ln -s /etc/passwd "$CONVEYOR_OUTPUT"' } },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.s).toMatchObject({ status: 'failed', error: { code: 'bad_output' } });
    expect(JSON.stringify(done)).not.toContain('root:');
  });

  it('ends a step when its command ends, though a setsid background process holds stdout', async () => {
    const mark = marker();
    const run = await engine.submit({
      name: 'holder',
      steps: { s: { env: { MARK: mark }, run: 'setsid sleep 25 & echo done', timeout: '3s' } },
    });
    const { run: done } = await engine.waitForRun(run.id);
    // It succeeded: it neither waited for the sleeper nor was killed by its timeout.
    expect(done.steps.s).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(processesWithEnv('MARK', mark)).toEqual([]);
  });

  it('kills a setsid child started after the step returned', async () => {
    const file = join(dir, 'late-writer');
    const mark = marker();
    const run = await engine.submit({
      name: 'late',
      steps: {
        s: {
          env: { MARK: mark },
          run: `(sleep 0.3; setsid sh -c 'while :; do date >> ${file}; sleep 0.1; done') > /dev/null 2>&1 & sleep 0.6`,
          timeout: '3s',
        },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.s!.status).toBe('succeeded');
    expect(processesWithEnv('MARK', mark)).toEqual([]);
    const size = existsSync(file) ? statSync(file).size : 0;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(existsSync(file) ? statSync(file).size : 0).toBe(size);
  });

  it('times out a step whose processes ignore SIGTERM in their own sessions', async () => {
    const mark = marker();
    const run = await engine.submit({
      name: 'stubborn',
      steps: {
        s: {
          env: { MARK: mark },
          run: `setsid sh -c 'trap "" TERM; sleep 30' & trap "" TERM; echo started; sleep 30`,
          timeout: '1s',
        },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.s).toMatchObject({ status: 'failed', error: { code: 'timeout' } });
    expect(processesWithEnv('MARK', mark)).toEqual([]);
  });

  it('honours a timeout longer than 2^31 ms for a short step', async () => {
    const run = await engine.submit({
      name: 'long-timeout',
      steps: { s: { run: 'sleep 1', timeout: '25d' } },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.s!.status).toBe('succeeded');
  });
});

describe('status functions read the same everywhere', () => {
  it('prints cancelled() true in the run of an always() step after a cancel', async () => {
    const run = await engine.submit({
      name: 'cancelled-fn',
      steps: {
        long: { run: 'echo started; sleep 30' },
        cleanup: {
          needs: ['long'],
          if: '${{ always() }}',
          env: { FAILED: '${{ failure() }}' },
          run: 'echo "cancelled=${{ cancelled() }} success=${{ success() }} failed=$FAILED"',
        },
      },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.log' && e.data.step === 'long');
    expect((await engine.request('POST', `/v1/runs/${run.id}/cancel`)).status).toBe(202);
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.cleanup!.status).toBe('succeeded');
    const log = (await engine.request('GET', `/v1/runs/${run.id}/steps/cleanup/logs`)).body;
    expect(log).toBe('cancelled=true success=false failed=false\n');
  });
});

describe('a workspace per run', () => {
  it("shares one directory between a run's steps, keeps cwd inside it, and removes it at the end", async () => {
    const run = await engine.submit({
      name: 'workspace',
      steps: {
        make: { run: 'pwd; echo hello > shared.txt; ls' },
        read: { needs: ['make'], run: 'cat shared.txt; echo "$CONVEYOR_WORKSPACE"' },
        sub: { needs: ['make'], cwd: 'a/b', run: 'pwd; cat ../../shared.txt' },
        escape: { needs: ['make'], cwd: '../..', run: 'pwd' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    const ws = join(workspaces, run.id);
    const log = async (step: string) =>
      (await engine.request('GET', `/v1/runs/${run.id}/steps/${step}/logs`)).body;
    expect(await log('make')).toBe(`${ws}\nshared.txt\n`);
    expect(await log('read')).toBe(`hello\n${ws}\n`);
    expect(await log('sub')).toBe(`${join(ws, 'a/b')}\nhello\n`);
    expect(done.steps.escape).toMatchObject({ status: 'failed', error: { code: 'bad_cwd' } });
    // Never the engine's own directory.
    expect(await log('make')).not.toContain(process.cwd());
    // The run's end reaches every worker, which removes its copy.
    for (let i = 0; i < 50 && existsSync(ws); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(existsSync(ws)).toBe(false);
  });

  it("keeps the workspace when asked to; a sweep removes ended runs' workspaces, not unknown live ones", async () => {
    const kept = new Workspaces({ baseDir: join(dir, 'kept'), keep: true });
    const keptDir = await kept.forRun('run_keepme');
    await kept.remove('run_keepme');
    expect(existsSync(keptDir)).toBe(true);

    const finished = await engine.submit({ name: 'finished', steps: { s: { run: 'true' } } });
    await engine.waitForRun(finished.id);
    const running = await engine.submit({ name: 'still', steps: { s: { run: 'sleep 30' } } });
    await engine.waitForEvent(running.id, (e) => e.type === 'step.started');
    const swept = new Workspaces({ baseDir: join(dir, 'swept') });
    const ids = [finished.id, running.id, 'run_otherprefix', 'run_longgone'];
    for (const id of ids) await swept.forRun(id);
    // Unknown to this Redis: another prefix's live run (new), or one long expired (old).
    const weekAgo = new Date(Date.now() - 8 * 24 * 3600_000);
    utimesSync(join(dir, 'swept', 'run_longgone'), weekAgo, weekAgo);
    const removed = await swept.sweep((runIds) => engine.api.deps.store.runStates(runIds));
    expect(removed.sort()).toEqual([finished.id, 'run_longgone'].sort());
    expect(existsSync(join(dir, 'swept', running.id))).toBe(true);
    expect(existsSync(join(dir, 'swept', 'run_otherprefix'))).toBe(true);
    await engine.request('POST', `/v1/runs/${running.id}/cancel`);
    await engine.waitForRun(running.id);
  });
});
