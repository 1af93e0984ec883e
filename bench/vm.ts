/**
 * The VM executor's benchmark (issue 4), through the executor interface, no Redis involved:
 *  (a) start → first instruction of a function step: warm pool, cold VM, cold VM in the sandbox,
 *      against a bare `node -e 0` spawn and an in-process import-and-call of the same module
 *  (b) a sandboxed `run: true` step against the same step on the local executor and a bare
 *      `sh -c true` spawn
 *  (c) 200 function steps: steps per second with the warm pool, and with cold VMs only
 * "First instruction" is the moment the worker receives the function's first log line.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { ExecutorContext, StepExecution } from '../src/workers/executor.ts';
import { LocalExecutor } from '../src/workers/local/index.ts';
import { compileFunction } from '../src/workers/vm/function-source.ts';
import { VmExecutor } from '../src/workers/vm/index.ts';
import { percentile, round } from './support.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const SAMPLES = 15;
const STEPS = 200;
const CONCURRENCY = 4;
const FIRST_LINE = "export default async (ctx) => { ctx.log('first'); return { ok: true }; }";

function step(extra: Partial<StepExecution>): StepExecution {
  return {
    runId: 'run_bench',
    stepId: 'bench',
    attempt: 1,
    env: {},
    secrets: [],
    idempotencyKey: 'run_bench:bench',
    limits: { maxOutputBytes: 1024 * 1024 },
    options: {},
    context: {},
    ...extra,
  };
}

/** A context whose `first` resolves with the time of the first log chunk. */
function timedContext(): { ctx: ExecutorContext; first: Promise<number> } {
  let mark: (t: number) => void = () => {};
  const first = new Promise<number>((resolve) => {
    mark = resolve;
  });
  const ctx: ExecutorContext = {
    signal: new AbortController().signal,
    log: () => mark(performance.now()),
    progress: () => {},
  };
  return { ctx, first };
}

/** ms from `run()` to the function's first instruction, `samples` times. */
async function firstInstruction(executor: VmExecutor, options: Record<string, unknown>, warm: boolean) {
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    if (warm) await executor.whenPoolFull();
    const { ctx, first } = timedContext();
    const started = performance.now();
    const result = await executor.run(step({ function: FIRST_LINE, options }), ctx);
    if (result.error) throw new Error(`bench step failed: ${result.error.message}`);
    times.push((await first) - started);
  }
  return times;
}

/** ms from start to the first instruction of the same module imported and called in-process. */
async function inProcess(): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const { ctx, first } = timedContext();
    const started = performance.now();
    const code = await compileFunction(FIRST_LINE);
    // A fresh URL per sample: the module cache must not turn this into a bare call.
    const mod = await import(
      `data:text/javascript;base64,${Buffer.from(`${code}\n//${i}`).toString('base64')}`
    );
    await mod.default({ log: () => ctx.log('stdout', 'first') });
    times.push((await first) - started);
  }
  return times;
}

/** ms for a process to be spawned and to exit. */
async function spawnTimes(file: string, args: string[]): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    await new Promise<void>((resolve, reject) =>
      spawn(file, args, { stdio: 'ignore' })
        .on('error', reject)
        .on('exit', () => resolve()),
    );
    times.push(performance.now() - started);
  }
  return times;
}

/** ms per whole `run: true` step. */
async function trueSteps(executor: VmExecutor | LocalExecutor): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    const result = await executor.run(step({ command: 'true' }), timedContext().ctx);
    if (result.exitCode !== 0) throw new Error(`bench step failed: ${JSON.stringify(result)}`);
    times.push(performance.now() - started);
  }
  return times;
}

/** Steps per second for `STEPS` function steps, `CONCURRENCY` at a time. */
async function throughput(executor: VmExecutor): Promise<number> {
  await executor.whenPoolFull();
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < STEPS) {
      next++;
      const result = await executor.run(step({ function: FIRST_LINE }), timedContext().ctx);
      if (result.error) throw new Error(`bench step failed: ${result.error.message}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return STEPS / ((performance.now() - started) / 1000);
}

const p50 = (values: number[]) => round(percentile(values, 50), 1);
const p95 = (values: number[]) => round(percentile(values, 95), 1);

const suite: BenchSuite = {
  name: 'vm',
  async run() {
    const pooled = new VmExecutor({ poolSize: 2 });
    const cold = new VmExecutor({ poolSize: 0 });
    const local = new LocalExecutor();
    try {
      const caps = await cold.capabilities();
      if (caps.sandboxUnavailable)
        throw new Error(`the VM benchmark needs the sandbox: ${caps.sandboxUnavailable}`);
      // Nothing may start in the background while a figure is taken.
      await pooled.whenPoolFull();
      const node = await spawnTimes(process.execPath, ['-e', '0']);
      const direct = await inProcess();
      const warm = await firstInstruction(pooled, {}, true);
      const coldBare = await firstInstruction(cold, { sandbox: false }, false);
      const coldSandboxed = await firstInstruction(cold, {}, false);
      const vmTrue = await trueSteps(cold);
      const localTrue = await trueSteps(local);
      const shTrue = await spawnTimes('/bin/sh', ['-c', 'true']);
      const pooledRate = await throughput(pooled);
      const coldRate = await throughput(cold);
      const rows: BenchRow[] = [
        {
          metric: 'function start→first instruction, warm pool (p50)',
          value: p50(warm),
          unit: 'ms',
          peer: 'in-process import + call',
          peerValue: p50(direct),
        },
        {
          metric: 'function start→first instruction, warm pool (p95)',
          value: p95(warm),
          unit: 'ms',
          peer: 'in-process import + call',
          peerValue: p95(direct),
        },
        {
          metric: 'function start→first instruction, cold VM, no sandbox (p50)',
          value: p50(coldBare),
          unit: 'ms',
          peer: 'bare `node -e 0` spawn→exit',
          peerValue: p50(node),
        },
        {
          metric: 'function start→first instruction, cold VM in sandbox (p50)',
          value: p50(coldSandboxed),
          unit: 'ms',
          peer: 'bare `node -e 0` spawn→exit',
          peerValue: p50(node),
        },
        {
          metric: 'function start→first instruction, cold VM in sandbox (p95)',
          value: p95(coldSandboxed),
          unit: 'ms',
          peer: 'bare `node -e 0` spawn→exit',
          peerValue: p95(node),
        },
        {
          metric: 'sandboxed `run: true` step (p50)',
          value: p50(vmTrue),
          unit: 'ms',
          peer: 'local executor `run: true`',
          peerValue: p50(localTrue),
        },
        {
          metric: 'sandboxed `run: true` step (p50), vs bare spawn',
          value: p50(vmTrue),
          unit: 'ms',
          peer: '`sh -c true` spawn→exit',
          peerValue: p50(shTrue),
        },
        {
          metric: `${STEPS} function steps, ${CONCURRENCY} at a time, warm pool of 2`,
          value: round(pooledRate, 1),
          unit: 'steps/s',
          peer: 'cold VMs only',
          peerValue: round(coldRate, 1),
        },
      ];
      return rows;
    } finally {
      await Promise.all([pooled.close(), cold.close(), local.close()]);
    }
  },
};

export default suite;
