/**
 * Scaling out (issue 11), with real `conveyor worker` processes as production runs them:
 *  (a) steps per second with 1, 2 and 4 worker processes, on `sleep 0.05` steps (I/O-bound: the
 *      target is ≥ 1.8× from one process to two) and on `run: true` steps (the engine's and the
 *      spawn's own cost, bound by this machine's cores);
 *  (b) recovery: from SIGKILL of a worker holding a step to that step's attempt 2 starting on
 *      another worker, read from the run's events (default lock settings);
 *  (c) start-up (spawn → /healthz answering) and resident memory of `api` and `worker`, compiled
 *      (`npm run build`, dist/ alone as in the image) against the sources through tsx.
 * Each figure is the median of three trials. Workers run the compiled build.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { type ConveyorApi, startApi } from '../src/api/server.ts';
import { isTerminalEvent, type RunEvent } from '../src/store/index.ts';
import { waitForRunEvent } from '../test/support/engine.ts';
import { freePort } from '../test/support/redis-server.ts';
import { benchPrefix, percentile, postRun, round } from './support.ts';
import type { BenchContext, BenchRow, BenchSuite } from './types.ts';

const TRIALS = 3;
/**
 * Slots per worker process: few, so that on sleep steps the processes are the limit, not this
 * 2-core machine's CPU (each local step still spawns setpriv, unshare, an init and a shell).
 */
const SLOTS = 2;
const SLEEP_STEPS = 160;
const NOOP_STEPS = 160;
const logger = pino({ level: 'silent' });
const repo = new URL('..', import.meta.url).pathname;

async function median(measure: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < TRIALS; i++) values.push(await measure());
  return percentile(values, 50);
}

/**
 * Two layouts of Conveyor in a temp dir: `dist` (bin/, a fresh `npm run build`, package.json,
 * no sources: what the image holds) and `tsx` (bin/ and src/ without a build: the sources run
 * through tsx). Both use this checkout's node_modules.
 */
async function layouts(dir: string): Promise<{ dist: string; tsx: string }> {
  const dist = join(dir, 'dist-layout');
  const tsx = join(dir, 'tsx-layout');
  for (const root of [dist, tsx]) {
    mkdirSync(root);
    cpSync(join(repo, 'bin'), join(root, 'bin'), { recursive: true });
    cpSync(join(repo, 'package.json'), join(root, 'package.json'));
    symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'));
  }
  cpSync(join(repo, 'src'), join(tsx, 'src'), { recursive: true });
  await promisify(execFile)(process.execPath, ['infra/build.mjs', '--out-dir', join(dist, 'dist')], {
    cwd: repo,
  });
  return { dist, tsx };
}

/** A spawned `conveyor <mode>` from `root`, with its output lines. */
function conveyor(root: string, mode: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [join(root, 'bin/conveyor.mjs'), mode], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buffer = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (const wake of waiters.splice(0)) wake();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    exited,
    /** The first log line matching `pattern`, parsed. */
    line(pattern: RegExp): Promise<Record<string, unknown>> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = buffer.split('\n').find((l) => pattern.test(l));
          if (found) return resolve(JSON.parse(found) as Record<string, unknown>);
          if (child.exitCode !== null)
            return reject(new Error(`${mode} exited before ${pattern}: ${buffer}`));
          waiters.push(check);
        };
        check();
        void exited.then(check);
      });
    },
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
/** Polls `url` until it answers 200; resolves with the time that took (ms) from `since`. */
async function healthyAfter(url: string, since: number, child: ChildProcess): Promise<number> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before ${url} answered`);
    try {
      if ((await fetch(url)).status === 200) return performance.now() - since;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Resident memory of a process, in MB. */
function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

/** The in-process API a measurement submits to and follows events with. */
async function submitter(redisUrl: string, prefix: string) {
  const api: ConveyorApi = await startApi({ redisUrl, prefix, port: 0, logger });
  const base = `http://127.0.0.1:${api.port}`;
  return {
    api,
    submit: (workflow: unknown) => postRun(base, workflow),
    async cancel(runId: string): Promise<void> {
      await fetch(`${base}/v1/runs/${runId}/cancel`, { method: 'POST' });
    },
    /** Every event of the run, up to its terminal one; `onEvent` sees each as it comes. */
    async events(runId: string, onEvent: (e: RunEvent) => void = () => {}): Promise<RunEvent[]> {
      const out: RunEvent[] = [];
      await waitForRunEvent(api, runId, (e) => {
        out.push(e);
        onEvent(e);
        return isTerminalEvent(e.type);
      });
      return out;
    },
  };
}
type Submitter = Awaited<ReturnType<typeof submitter>>;

/** Starts `n` worker processes under `prefix`; resolves once each says it is ready. */
async function startWorkers(root: string, n: number, redisUrl: string, prefix: string, workspaces: string) {
  const workers = Array.from({ length: n }, () =>
    conveyor(root, 'worker', {
      REDIS_URL: redisUrl,
      CONVEYOR_PREFIX: prefix,
      WORKER_EXECUTORS: 'local',
      WORKER_CONCURRENCY: String(SLOTS),
      WORKER_WORKSPACE_DIR: workspaces,
    }),
  );
  const ids = await Promise.all(workers.map(async (w) => (await w.line(/worker ready/)).id as string));
  return workers.map((w, i) => ({ ...w, id: ids[i]! }));
}

/** Steps per second of one run of `steps` independent steps: first start to last end, from its events. */
async function throughput(s: Submitter, steps: number, run: string): Promise<number> {
  const workflow = {
    name: 'scaling',
    steps: Object.fromEntries(Array.from({ length: steps }, (_, i) => [`s${i}`, { run }])),
  };
  const events = await s.events(await s.submit(workflow));
  if (events.at(-1)?.type !== 'run.succeeded') throw new Error(`scaling run ended ${events.at(-1)?.type}`);
  const at = (type: string) =>
    events.filter((e) => e.type === type).map((e) => Date.parse(e.data.at as string));
  const seconds = (Math.max(...at('step.succeeded')) - Math.min(...at('step.started'))) / 1000;
  return steps / seconds;
}

/** (a) Steps per second with 1, 2 and 4 worker processes. */
async function scaleOut(ctx: BenchContext, root: string, workspaces: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const figures = new Map<string, number>();
  for (const processes of [1, 2, 4]) {
    const prefix = benchPrefix('scaling');
    const s = await submitter(ctx.redisUrl, prefix);
    const workers = await startWorkers(root, processes, ctx.redisUrl, prefix, workspaces);
    try {
      for (const [kind, run, steps] of [
        ['sleep 0.05', 'sleep 0.05', SLEEP_STEPS],
        ['run: true', 'true', NOOP_STEPS],
      ] as const) {
        const value = round(await median(() => throughput(s, steps, run)), 1);
        figures.set(`${kind}/${processes}`, value);
        const one = figures.get(`${kind}/1`)!;
        rows.push({
          metric: `${kind} steps, ${processes} worker process${processes > 1 ? 'es' : ''} × ${SLOTS} slots`,
          value,
          unit: 'steps/s',
          ...(processes > 1 && { peer: '1 process', peerValue: one }),
          ...(processes === 2 && kind === 'sleep 0.05' && { target: '≥ 1.8× peer' }),
        });
      }
    } finally {
      await Promise.all(workers.map((w) => w.kill()));
      await s.api.close();
    }
  }
  return rows;
}

/** (b) One trial: seconds from SIGKILL of the worker holding a step to that step's attempt 2. */
async function recoveryTrial(ctx: BenchContext, root: string, workspaces: string): Promise<number> {
  const prefix = benchPrefix('recovery');
  const s = await submitter(ctx.redisUrl, prefix);
  const workers = await startWorkers(root, 2, ctx.redisUrl, prefix, workspaces);
  try {
    const runId = await s.submit({ name: 'recovery', steps: { long: { run: 'sleep 60' } } });
    let killedAt = 0;
    let recoveredAt = 0;
    await s.events(runId, (e) => {
      if (e.type !== 'step.started') return;
      if (e.data.attempt === 1) {
        const victim = workers.find((w) => w.id === e.data.worker)!;
        void victim.kill('SIGKILL').then(() => {
          killedAt = Date.now();
        });
      } else {
        recoveredAt = Date.parse(e.data.at as string);
        void s.cancel(runId);
      }
    });
    if (!killedAt || !recoveredAt) throw new Error('recovery: the step was not started again');
    return (recoveredAt - killedAt) / 1000;
  } finally {
    await Promise.all(workers.map((w) => w.kill()));
    await s.api.close();
  }
}

/** (c) Start-up to /healthz and RSS of `mode` from the layout at `root`. */
async function startup(ctx: BenchContext, root: string, mode: 'api' | 'worker') {
  const port = await freePort();
  const prefix = benchPrefix('startup');
  const since = performance.now();
  const p = conveyor(root, mode, {
    REDIS_URL: ctx.redisUrl,
    CONVEYOR_PREFIX: prefix,
    ...(mode === 'api'
      ? { PORT: String(port) }
      : { WORKER_HEALTH_PORT: String(port), WORKER_EXECUTORS: 'local' }),
  });
  try {
    const ms = await healthyAfter(`http://127.0.0.1:${port}/healthz`, since, p.child);
    if (mode === 'worker') await p.line(/worker ready/);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // let start-up garbage be collected
    return { ms, rss: rssMb(p.child.pid!) };
  } finally {
    await p.kill();
  }
}

const suite: BenchSuite = {
  name: 'scaling',
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-bench-scaling-'));
    try {
      const { dist, tsx } = await layouts(dir);
      const workspaces = join(dir, 'workspaces');
      const rows = await scaleOut(ctx, dist, workspaces);
      rows.push({
        metric: 'recovery: SIGKILL of the worker holding a step → its attempt 2 started',
        value: round(await median(() => recoveryTrial(ctx, dist, workspaces)), 1),
        unit: 's',
        target: '≤ 12 s (lock 8 s + stalled check 4 s)',
      });
      for (const mode of ['api', 'worker'] as const) {
        const compiled: Array<{ ms: number; rss: number }> = [];
        const sources: Array<{ ms: number; rss: number }> = [];
        for (let i = 0; i < TRIALS; i++) {
          compiled.push(await startup(ctx, dist, mode));
          sources.push(await startup(ctx, tsx, mode));
        }
        const mid = (xs: Array<{ ms: number; rss: number }>, key: 'ms' | 'rss') =>
          percentile(
            xs.map((x) => x[key]),
            50,
          );
        rows.push({
          metric: `${mode} start-up (spawn → /healthz answers), compiled dist/`,
          value: round(mid(compiled, 'ms'), 0),
          unit: 'ms',
          peer: 'sources through tsx',
          peerValue: round(mid(sources, 'ms'), 0),
        });
        rows.push({
          metric: `${mode} resident memory after start, compiled dist/`,
          value: round(mid(compiled, 'rss'), 1),
          unit: 'MB',
          peer: 'sources through tsx',
          peerValue: round(mid(sources, 'rss'), 1),
        });
      }
      return rows;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default suite;
