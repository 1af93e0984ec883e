/**
 * The VM executor's benchmark (issues 4 and 12), through the executor interface, no Redis
 * involved:
 *  (a) start → first instruction of a function step: warm pool (p50, p99), cold VM, cold VM in
 *      the sandbox with and without the runner's startup snapshot, against a bare `node -e 0`
 *      spawn (same clean environment as a guest) and an in-process import-and-call
 *  (b) a sandboxed `run: true` step against the same step on the local executor and a bare
 *      `sh -c true` spawn
 *  (c) 200 function steps, 4 at a time (median of 3 trials, taking turns): steps per second with the
 *      demand-sized pool, without the snapshot, and with cold VMs only; CPU per step (worker
 *      process plus the VMs' cgroups, where cgroups are in use)
 * "First instruction" is the moment the worker receives the function's first log line.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ExecutorContext, StepExecution } from '../src/workers/executor.ts';
import { LocalExecutor } from '../src/workers/local/index.ts';
import { GUEST_PATH } from '../src/workers/vm/driver.ts';
import { compileFunction } from '../src/workers/vm/function-source.ts';
import { VmExecutor } from '../src/workers/vm/index.ts';
import { percentile, round } from './support.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const SAMPLES = 15;
/** Warm starts are cheap: enough of them for a p99 that is not just the maximum of a few. */
const WARM_SAMPLES = 60;
const STEPS = 200;
const CONCURRENCY = 4;
/** Throughput figures are the median of this many trials (the machine is noisy). */
const TRIALS = 3;
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
  for (let i = 0; i < (warm ? WARM_SAMPLES : SAMPLES); i++) {
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

/**
 * ms for a process to be spawned and to exit, in a guest's clean environment: an inherited
 * `NODE_EXTRA_CA_CERTS`, for one, makes every Node.js start parse a CA bundle (≈ 40 ms here).
 */
async function spawnTimes(file: string, args: string[]): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    await new Promise<void>((resolve, reject) =>
      spawn(file, args, { stdio: 'ignore', env: { PATH: GUEST_PATH } })
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

/** CPU ms the VMs' cgroups of this process have used so far (`null` without cgroups). */
function vmCgroupCpuMs(): number | null {
  const own = readFileSync('/proc/self/cgroup', 'utf8');
  const v2 = /^0::(.*)$/m.exec(own)?.[1];
  const v1 = own
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes('cpuacct'))
    ?.split(':')[2];
  const [root, path, file] = v1
    ? ['/sys/fs/cgroup/cpuacct', v1, 'cpuacct.usage']
    : ['/sys/fs/cgroup', v2 ?? '/', 'cpu.stat'];
  const parent = join(root, path);
  let total = 0;
  let found = false;
  for (const name of readdirSync(parent).filter((n) => n.startsWith(`conveyor-${process.pid}-`))) {
    const text = readFileSync(join(parent, name, file), 'utf8');
    total += file === 'cpu.stat' ? Number(/^usage_usec (\d+)$/m.exec(text)?.[1]) / 1000 : Number(text) / 1e6;
    found = true;
  }
  return found ? total : null;
}

/** Steps per second, and CPU ms per step (`null` without cgroups), of one throughput trial. */
type Trial = { rate: number; cpuMs: number | null };

/** Steps per second and CPU ms per step for `STEPS` function steps, `CONCURRENCY` at a time. */
async function throughput(executor: VmExecutor): Promise<Trial> {
  await executor.whenPoolFull();
  let next = 0;
  const cpu = process.cpuUsage();
  const vmCpu = vmCgroupCpuMs();
  const started = performance.now();
  const lane = async () => {
    while (next < STEPS) {
      next++;
      const result = await executor.run(step({ function: FIRST_LINE }), timedContext().ctx);
      if (result.error) throw new Error(`bench step failed: ${result.error.message}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const rate = STEPS / ((performance.now() - started) / 1000);
  const used = process.cpuUsage(cpu);
  const vmNow = vmCgroupCpuMs();
  const cpuMs =
    vmCpu === null || vmNow === null ? null : ((used.user + used.system) / 1000 + vmNow - vmCpu) / STEPS;
  return { rate, cpuMs };
}

/**
 * The trial with the median rate, of `TRIALS`, for each executor. The trials take turns (one of
 * each, then again), so that load coming and going on a shared machine favours none of them.
 */
async function medianTrials(executors: VmExecutor[]): Promise<Trial[]> {
  const trials = executors.map(() => [] as Trial[]);
  for (let i = 0; i < TRIALS; i++) {
    for (const [j, executor] of executors.entries()) trials[j]!.push(await throughput(executor));
  }
  return trials.map((t) => t.sort((a, b) => a.rate - b.rate)[Math.floor(t.length / 2)]!);
}

const p50 = (values: number[]) => round(percentile(values, 50), 1);
const p95 = (values: number[]) => round(percentile(values, 95), 1);
const p99 = (values: number[]) => round(percentile(values, 99), 1);

const suite: BenchSuite = {
  name: 'vm',
  async run() {
    const pooled = new VmExecutor({ poolSize: 2 });
    const pooledPlain = new VmExecutor({ poolSize: 2, snapshot: false });
    const cold = new VmExecutor({ poolSize: 0 });
    const coldPlain = new VmExecutor({ poolSize: 0, snapshot: false });
    const local = new LocalExecutor();
    const executors = [pooled, pooledPlain, cold, coldPlain];
    try {
      const caps = await cold.capabilities();
      if (caps.sandboxUnavailable)
        throw new Error(`the VM benchmark needs the sandbox: ${caps.sandboxUnavailable}`);
      // Nothing may start in the background while a figure is taken: the snapshots are built
      // (by a first cold step) and the pools are full before anything is measured.
      await Promise.all(executors.map((e) => e.run(step({ function: FIRST_LINE }), timedContext().ctx)));
      for (const e of executors)
        await e.driver.prepare?.({ kind: 'function', env: {}, options: e.options.poolProfile });
      await Promise.all(executors.map((e) => e.whenPoolFull()));
      const node = await spawnTimes(process.execPath, ['-e', '0']);
      const direct = await inProcess();
      const warm = await firstInstruction(pooled, {}, true);
      const coldBare = await firstInstruction(cold, { sandbox: false }, false);
      const coldSandboxed = await firstInstruction(cold, {}, false);
      const coldSandboxedPlain = await firstInstruction(coldPlain, {}, false);
      const vmTrue = await trueSteps(cold);
      const localTrue = await trueSteps(local);
      const shTrue = await spawnTimes('/bin/sh', ['-c', 'true']);
      const [pooledRate, plainRate, coldRate] = (await medianTrials([pooled, pooledPlain, cold])) as [
        Trial,
        Trial,
        Trial,
      ];
      const stats = pooled.poolStats();
      const rows: BenchRow[] = [
        {
          metric: 'function start→first instruction, warm pool (p50)',
          value: p50(warm),
          unit: 'ms',
          peer: 'in-process import + call',
          peerValue: p50(direct),
          target: '≤ 10 ms',
        },
        {
          metric: 'function start→first instruction, warm pool (p99)',
          value: p99(warm),
          unit: 'ms',
          peer: 'in-process import + call',
          peerValue: p99(direct),
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
          metric: 'function start→first instruction, cold VM in sandbox, runner snapshot (p50)',
          value: p50(coldSandboxed),
          unit: 'ms',
          peer: 'same without the snapshot',
          peerValue: p50(coldSandboxedPlain),
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
          metric: `${STEPS} function steps, ${CONCURRENCY} at a time, demand-sized pool (median of ${TRIALS})`,
          value: round(pooledRate.rate, 1),
          unit: 'steps/s',
          peer: 'cold VMs only',
          peerValue: round(coldRate.rate, 1),
          target: '≥ 20 steps/s',
        },
        {
          metric: `${STEPS} function steps, ${CONCURRENCY} at a time, pool with the runner snapshot`,
          value: round(pooledRate.rate, 1),
          unit: 'steps/s',
          peer: 'same pool without the snapshot',
          peerValue: round(plainRate.rate, 1),
        },
      ];
      if (pooledRate.cpuMs !== null && plainRate.cpuMs !== null) {
        rows.push({
          metric: 'CPU per function step (worker + VM cgroups), pool with the snapshot',
          value: round(pooledRate.cpuMs, 1),
          unit: 'ms',
          peer: 'without the snapshot',
          peerValue: round(plainRate.cpuMs, 1),
        });
      }
      if (stats) {
        rows.push({
          metric: `pool after the runs: VMs handed out of ${stats.started} started (target ${stats.target})`,
          value: stats.taken,
          unit: 'VMs',
        });
      }
      return rows;
    } finally {
      await Promise.all([...executors.map((e) => e.close()), local.close()]);
    }
  },
};

export default suite;
