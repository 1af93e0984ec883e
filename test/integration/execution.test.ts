import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { marker, processesWithEnv } from '../support/processes.ts';

let engine: TestEngine;
let dir: string;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { concurrency: 8 });
  dir = mkdtempSync(join(tmpdir(), 'conveyor-exec-'));
});
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

const statuses = (run: { steps: Record<string, { status: string }> }) =>
  Object.fromEntries(Object.entries(run.steps).map(([id, s]) => [id, s.status]));

describe('execution', () => {
  it('runs a diamond: shared dependency once, dependent after both branches', async () => {
    const file = join(dir, 'diamond.log');
    const log = (id: string) => `echo ${id} >> ${file}`;
    const run = await engine.submit({
      name: 'diamond',
      steps: {
        a: { run: log('a') },
        b: { needs: ['a'], run: `sleep 0.1; ${log('b')}` },
        c: { needs: ['a'], run: log('c') },
        d: { needs: ['b', 'c'], run: log('d') },
      },
    });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    const order = readFileSync(file, 'utf8').trim().split('\n');
    expect(order).toHaveLength(4);
    expect(order[0]).toBe('a');
    expect(order[3]).toBe('d');
    expect(
      events
        .filter((e) => e.type === 'step.started')
        .map((e) => e.data.step)
        .sort(),
    ).toEqual(['a', 'b', 'c', 'd']);
    expect(events.at(-1)!.type).toBe('run.succeeded');
    // ids strictly increase
    const ids = events.map((e) => e.id.split('-').map(Number) as [number, number]);
    for (let i = 1; i < ids.length; i++) {
      const [a, b] = [ids[i - 1]!, ids[i]!];
      expect(b[0] > a[0] || (b[0] === a[0] && b[1] > a[1])).toBe(true);
    }
  });

  it('runs several roots and sinks', async () => {
    const run = await engine.submit({
      name: 'multi',
      steps: {
        r1: { run: 'true' },
        r2: { run: 'true' },
        m: { needs: ['r1', 'r2'], run: 'true' },
        s1: { needs: ['m'], run: 'true' },
        s2: { needs: ['r2'], run: 'true' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(statuses(done)).toEqual({
      r1: 'succeeded',
      r2: 'succeeded',
      m: 'succeeded',
      s1: 'succeeded',
      s2: 'succeeded',
    });
  });

  it('passes outputs through expressions without ever parsing them as shell code', async () => {
    const nasty = `it's; $(touch ${dir}/pwned) \`touch ${dir}/pwned2\` "q" \\ end\nsecond line; rm -rf /nonexistent`;
    const file = join(dir, 'nasty');
    writeFileSync(file, nasty);
    const run = await engine.submit(
      {
        name: 'outputs',
        inputs: { v: { type: 'string' } },
        steps: {
          produce: {
            run: `{ echo "value<<EOF"; cat ${file}; echo; echo "EOF"; echo "plain=one=two"; } >> "$CONVEYOR_OUTPUT"`,
          },
          quoted: {
            needs: ['produce'],
            run: `printf '%s' "\${{ steps.produce.outputs.value }}" > ${dir}/quoted`,
          },
          unquoted: {
            needs: ['produce'],
            run: `printf '%s|' \${{ steps.produce.outputs.value }} > ${dir}/unquoted`,
          },
          input: { run: `printf '%s' "\${{ inputs.v }}" > ${dir}/input` },
          env: {
            needs: ['produce'],
            env: { V: '${{ steps.produce.outputs.plain }}' },
            run: `printf '%s' "$V" > ${dir}/env`,
          },
        },
      },
      { v: nasty },
    );
    const { run: done } = await engine.waitForRun(run.id);
    expect(statuses(done)).toEqual({
      produce: 'succeeded',
      quoted: 'succeeded',
      unquoted: 'succeeded',
      input: 'succeeded',
      env: 'succeeded',
    });
    expect(done.steps.produce!.outputs).toEqual({ value: nasty, plain: 'one=two' });
    expect(readFileSync(join(dir, 'quoted'), 'utf8')).toBe(nasty);
    expect(readFileSync(join(dir, 'input'), 'utf8')).toBe(nasty);
    expect(readFileSync(join(dir, 'env'), 'utf8')).toBe('one=two');
    // Unquoted: split on whitespace like any shell variable, but never executed.
    expect(readFileSync(join(dir, 'unquoted'), 'utf8')).toContain('$(touch');
    expect(() => readFileSync(join(dir, 'pwned'))).toThrow();
    expect(() => readFileSync(join(dir, 'pwned2'))).toThrow();
  });

  it('turns ::progress:: lines into step.progress events, in order, out of the log', async () => {
    const run = await engine.submit({
      name: 'progress',
      steps: {
        work: {
          run: 'echo before; echo "::progress::50 half way"; sleep 0.4; echo "::progress::100"; echo after',
        },
      },
    });
    const { events } = await engine.waitForRun(run.id);
    const progress = events.filter((e) => e.type === 'step.progress');
    expect(progress.map((e) => `${e.data.percent}:${e.data.message ?? ''}`)).toEqual(['50:half way', '100:']);
    const logs = events.filter((e) => e.type === 'step.log').map((e) => e.data.text);
    expect(logs.join('')).toBe('before\nafter\n');
    expect((await engine.request('GET', `/v1/runs/${run.id}/steps/work/logs`)).body).toBe('before\nafter\n');
  });

  it('coalesces a flood of progress reports: the newest wins, a few events in all', async () => {
    const run = await engine.submit({
      name: 'progress-flood',
      steps: {
        work: { run: 'i=0; while [ $i -le 2000 ]; do echo "::progress::$((i / 20))"; i=$((i + 1)); done' },
      },
    });
    const { events, run: done } = await engine.waitForRun(run.id);
    expect(done.steps.work!.status).toBe('succeeded');
    const progress = events.filter((e) => e.type === 'step.progress');
    expect(progress.length).toBeLessThan(50);
    expect(progress.at(-1)!.data.percent).toBe(100);
  });

  it('publishes the events a step emits when it succeeds, and only then', async () => {
    const emit = (type: string) => `echo '{"type":"${type}","payload":{"n":1}}' >> "$CONVEYOR_EVENTS"`;
    const run = await engine.submit({
      name: 'emitter',
      steps: {
        good: { run: emit('artifact.published') },
        bad: { run: `${emit('never.published')}; exit 1` },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.good!.emitted).toEqual(['artifact.published']);
    const bus = await engine.api.deps.redis.xrange(engine.api.deps.store.keys.bus(), '-', '+');
    const mine = bus.map(([, fields]) => JSON.parse(fields[3]!)).filter((e) => e.source.runId === run.id);
    expect(mine).toEqual([
      {
        type: 'artifact.published',
        payload: { n: 1 },
        source: { runId: run.id, stepId: 'good' },
        at: expect.any(String),
      },
    ]);
  });

  it('follows GitHub if/skip semantics', async () => {
    const run = await engine.submit({
      name: 'conditions',
      inputs: { ref: { type: 'string', default: 'dev' } },
      steps: {
        ok: { run: 'true' },
        boom: { run: 'exit 3' },
        afterBoom: { needs: ['boom'], run: 'true' },
        skippedChild: { needs: ['afterBoom'], run: 'true' },
        onFailure: { needs: ['boom'], if: '${{ failure() }}', run: 'true' },
        always: { needs: ['afterBoom'], if: 'always()', run: 'true' },
        notMain: { needs: ['ok'], if: "${{ inputs.ref == 'main' }}", run: 'true' },
        afterNotMain: { needs: ['notMain'], run: 'true' },
        noFailure: { needs: ['ok'], if: 'failure()', run: 'true' },
      },
    });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(statuses(done)).toEqual({
      ok: 'succeeded',
      boom: 'failed',
      afterBoom: 'skipped',
      skippedChild: 'skipped',
      onFailure: 'succeeded',
      always: 'succeeded',
      notMain: 'skipped',
      afterNotMain: 'skipped',
      noFailure: 'skipped',
    });
    expect(done.status).toBe('failed');
    expect(done.steps.boom!.exitCode).toBe(3);
    expect(done.steps.boom!.error).toEqual({ code: 'exit_code', message: 'exited with code 3' });
    expect(events.find((e) => e.type === 'run.failed')!.data.failedSteps).toEqual(['boom']);
  });

  it('continueOnError lets dependents and the run treat a failure as success', async () => {
    const run = await engine.submit({
      name: 'coe',
      steps: { flaky: { run: 'exit 1', continueOnError: true }, next: { needs: ['flaky'], run: 'true' } },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(statuses(done)).toEqual({ flaky: 'failed', next: 'succeeded' });
    expect(done.status).toBe('succeeded');
  });

  it('retries with backoff, then succeeds', async () => {
    const counter = join(dir, 'attempts');
    const run = await engine.submit({
      name: 'retry',
      steps: {
        flaky: {
          run: `echo "$CONVEYOR_RUN_ATTEMPT $CONVEYOR_IDEMPOTENCY_KEY" >> ${counter}; [ "$(wc -l < ${counter})" -ge 3 ]`,
          retries: { attempts: 3, backoff: 'exponential', delay: '50ms' },
        },
      },
    });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.steps.flaky!.status).toBe('succeeded');
    expect(done.steps.flaky!.attempts).toBe(3);
    const lines = readFileSync(counter, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['1', '2', '3']);
    expect(new Set(lines.map((l) => l.split(' ')[1])).size).toBe(1);
    expect(events.filter((e) => e.type === 'step.retrying')).toHaveLength(2);
  });

  it('fails after the last attempt', async () => {
    const run = await engine.submit({
      name: 'exhaust',
      steps: { bad: { run: 'exit 7', retries: { attempts: 2, delay: 10 } } },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.bad!.status).toBe('failed');
    expect(done.steps.bad!.attempts).toBe(2);
  });

  it('timeout kills the whole process tree, grandchildren included', async () => {
    const mark = marker();
    const run = await engine.submit({
      name: 'timeout',
      steps: {
        slow: { env: { MARK: mark }, run: `sh -c 'sleep 300 & echo started; wait'`, timeout: '500ms' },
      },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.log');
    expect(processesWithEnv('MARK', mark).length).toBeGreaterThan(0);
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.slow!.status).toBe('failed');
    expect(done.steps.slow!.error!.code).toBe('timeout');
    expect(processesWithEnv('MARK', mark)).toEqual([]);
  });

  it('cancel stops running steps and skips the rest', async () => {
    const mark = marker();
    const run = await engine.submit({
      name: 'cancel',
      steps: {
        long: { env: { MARK: mark }, run: 'echo started; sleep 300' },
        after: { needs: ['long'], run: 'true' },
        // Outlives the cancel watcher's 2 s poll: a step started after the cancel is not cancelled by it.
        cleanup: { needs: ['long'], if: 'always()', run: 'sleep 2.5; echo cleanup' },
      },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.log');
    const res = await engine.request('POST', `/v1/runs/${run.id}/cancel`);
    expect(res.status).toBe(202);
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('cancelled');
    expect(statuses(done)).toEqual({ long: 'cancelled', after: 'skipped', cleanup: 'succeeded' });
    expect(processesWithEnv('MARK', mark)).toEqual([]);
    const again = await engine.request('POST', `/v1/runs/${run.id}/cancel`);
    expect(again.status).toBe(409);
  });

  it('cancel wakes a step waiting out a long retry backoff and ends the run at once', async () => {
    const run = await engine.submit({
      name: 'cancel-backoff',
      steps: {
        flaky: { run: 'exit 1', retries: { attempts: 3, delay: '10m' } },
        after: { needs: ['flaky'], run: 'true' },
      },
    });
    await engine.waitForEvent(run.id, (e) => e.type === 'step.retrying');
    expect((await engine.request('POST', `/v1/runs/${run.id}/cancel`)).status).toBe(202);
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('cancelled');
    expect(statuses(done)).toEqual({ flaky: 'cancelled', after: 'skipped' });
    expect(done.steps.flaky!.attempts).toBe(1);
  });

  it('fails a step whose outputs pass the 1 MiB cap, and the worker goes on', async () => {
    const run = await engine.submit({
      name: 'cap',
      steps: {
        big: { run: `head -c 1100000 /dev/zero | tr '\\0' a | sed 's/^/x=/' >> "$CONVEYOR_OUTPUT"` },
        loud: { run: `head -c 12000000 /dev/zero | tr '\\0' 'y'` },
        fine: { needs: ['big'], if: 'always()', run: 'echo still working' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.steps.big!.status).toBe('failed');
    expect(done.steps.big!.error!.code).toBe('output_limit');
    expect(done.steps.big!.error!.message).toMatch(/cap/);
    expect(done.steps.loud!.status).toBe('failed');
    expect(done.steps.loud!.error!.code).toBe('output_limit');
    expect(done.steps.fine!.status).toBe('succeeded');
    const logs = await engine.request('GET', `/v1/runs/${run.id}/steps/loud/logs`);
    expect(logs.body.length).toBeLessThan(11 * 1024 * 1024);
  });
});
