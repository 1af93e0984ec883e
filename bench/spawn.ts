/**
 * Local steps against what a user could write by hand (issue 12, item 1): `run: ":"` through the
 * local executor and its spawner vs raw BullMQ workers spawning `sh -c :`, each peer in a process
 * of its own, small or inflated to the worker's size (a fork's cost follows the size of the
 * process that forks), on the same Redis.
 *  (a) a chain of `run: ":"` steps, per step, vs a raw BullMQ flow chain
 *  (b) independent `run: ":"` steps at concurrency 8, vs a raw BullMQ worker at concurrency 8
 *  (c) (b) again with this process (API + worker) inflated to ~300 MB RSS, vs the raw worker as large
 *  (d) what one launch costs from a small process: `node -e 0`, `sh -c :`, each link of the
 *      containment chain (containment.ts) and the one-exec launcher that replaces it (launcher.c)
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pino from 'pino';
import { startApi } from '../src/api/server.ts';
import { bullPrefix, isTerminalEvent } from '../src/store/index.ts';
import { containedArgv, findLaunchTools, probeContainment } from '../src/workers/local/containment.ts';
import { LocalExecutor } from '../src/workers/local/index.ts';
import { findLauncher, launcherArgv } from '../src/workers/local/launcher.ts';
import { startWorker } from '../src/workers/worker.ts';
import { waitForRunEvent } from '../test/support/engine.ts';
import { benchPrefix, percentile, postRun, round } from './support.ts';
import type { BenchContext, BenchRow, BenchSuite } from './types.ts';

const TRIALS = 3;
const CHAIN = 50;
const WIDE = 400;
const CONCURRENCY = 8;
/** The RSS of a worker with the API, the VM pool and 10,000 steps behind it (issue 12). */
const WORKER_RSS_MB = 300;

const logger = pino({ level: 'silent' });
const execFileAsync = promisify(execFile);
const PEER = fileURLToPath(new URL('./spawn-peer.mjs', import.meta.url));

async function median(measure: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < TRIALS; i++) values.push(await measure());
  return percentile(values, 50);
}

interface PeerOptions {
  mode: 'chain' | 'wide' | 'exec';
  n: number;
  concurrency?: number;
  ballastMb?: number;
  argv?: string[];
}

/** One run of bench/spawn-peer.mjs: its figure and its RSS. */
async function peer(redisUrl: string, options: PeerOptions): Promise<{ value: number; rssMb: number }> {
  const config = { redisUrl, prefix: bullPrefix(benchPrefix('peer')), ...options };
  const { stdout } = await execFileAsync(process.execPath, [PEER, JSON.stringify(config)], {
    maxBuffer: 2 ** 20,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { value: number; rssMb: number };
}

/** An in-process Conveyor (API + one worker serving `local`) under a fresh prefix. */
async function conveyor(redisUrl: string) {
  const prefix = benchPrefix('spawn');
  const api = await startApi({ redisUrl, prefix, port: 0, logger });
  const local = new LocalExecutor();
  const worker = await startWorker({
    redisUrl,
    prefix,
    executors: [local],
    concurrency: CONCURRENCY,
    logger,
  });
  const base = `http://127.0.0.1:${api.port}`;
  const runToEnd = async (workflow: unknown): Promise<void> => {
    const id = await postRun(base, workflow);
    const end = await waitForRunEvent(api, id, (e) => isTerminalEvent(e.type));
    if (end.type !== 'run.succeeded') throw new Error(`bench run ${id} ended ${end.type}`);
  };
  return {
    runToEnd,
    /** The RSS of the executor's spawner, in MB. */
    spawnerRssMb(): number {
      const status = readFileSync(`/proc/${local.spawnerPid()}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
    },
    async close() {
      await worker.close();
      await api.close();
    },
  };
}

const chain = (n: number) => ({
  name: 'chain',
  steps: Object.fromEntries(
    Array.from({ length: n }, (_, i) => [`s${i}`, { needs: i ? [`s${i - 1}`] : [], run: ':' }]),
  ),
});
const wide = (n: number) => ({
  name: 'wide',
  steps: Object.fromEntries(Array.from({ length: n }, (_, i) => [`s${i}`, { run: ':' }])),
});

const rssMb = () => process.memoryUsage().rss / 2 ** 20;

/** Touched memory, as a busy worker's heap, until this process's RSS reaches `mb`. */
function inflate(mb: number): Buffer[] {
  const ballast: Buffer[] = [];
  while (rssMb() < mb) ballast.push(Buffer.allocUnsafe(16 * 2 ** 20).fill(ballast.length % 251));
  return ballast;
}

const suite: BenchSuite = {
  name: 'spawn',
  async run({ redisUrl }: BenchContext): Promise<BenchRow[]> {
    const rows: BenchRow[] = [];
    const engine = await conveyor(redisUrl);
    try {
      await engine.runToEnd(chain(5));
      await engine.runToEnd(wide(40));

      // (a) chain
      const chainMs = await median(async () => {
        const t0 = performance.now();
        await engine.runToEnd(chain(CHAIN));
        return (performance.now() - t0) / CHAIN;
      });
      const small = await peer(redisUrl, { mode: 'chain', n: CHAIN });
      const rawChain = await median(async () => (await peer(redisUrl, { mode: 'chain', n: CHAIN })).value);
      rows.push({
        metric: `(a) \`run: ":"\` chain of ${CHAIN}, per step`,
        value: round(chainMs),
        unit: 'ms',
        peer: `raw BullMQ flow chain spawning sh -c : (${Math.round(small.rssMb)} MB process)`,
        peerValue: round(rawChain),
        target: '≤ 1.2× peer',
      });

      // (b) independent steps
      const wideRate = await median(async () => {
        const t0 = performance.now();
        await engine.runToEnd(wide(WIDE));
        return WIDE / ((performance.now() - t0) / 1000);
      });
      const rawWide = await median(
        async () => (await peer(redisUrl, { mode: 'wide', n: WIDE, concurrency: CONCURRENCY })).value,
      );
      rows.push({
        metric: `(b) ${WIDE} independent \`run: ":"\` steps, concurrency ${CONCURRENCY}`,
        value: round(wideRate, 0),
        unit: 'steps/s',
        peer: `raw BullMQ worker spawning sh -c : (${Math.round(small.rssMb)} MB process)`,
        peerValue: round(rawWide, 0),
        target: '≥ 0.8× peer',
      });

      // (c) both at the worker's size
      const ballast = inflate(WORKER_RSS_MB);
      const size = rssMb();
      const bigRate = await median(async () => {
        const t0 = performance.now();
        await engine.runToEnd(wide(WIDE));
        return WIDE / ((performance.now() - t0) / 1000);
      });
      const peerBallast = Math.max(0, Math.round(size - small.rssMb));
      const big = { mode: 'wide', n: WIDE, concurrency: CONCURRENCY, ballastMb: peerBallast } as const;
      const bigPeer = await peer(redisUrl, big);
      const rawBig = await median(async () => (await peer(redisUrl, big)).value);
      const bigChain = await median(
        async () => (await peer(redisUrl, { mode: 'chain', n: CHAIN, ballastMb: peerBallast })).value,
      );
      const spawnerMb = engine.spawnerRssMb();
      ballast.length = 0;
      rows.push({
        metric: `(c) ${WIDE} independent steps, concurrency ${CONCURRENCY}, worker at ${Math.round(size)} MB RSS`,
        value: round(bigRate, 0),
        unit: 'steps/s',
        peer: `raw BullMQ worker spawning sh -c : at ${Math.round(bigPeer.rssMb)} MB RSS`,
        peerValue: round(rawBig, 0),
        target: '> 1× peer',
      });
      rows.push({
        metric: '(c) RSS of the spawner that forked all of the above',
        value: round(spawnerMb, 0),
        unit: 'MB',
        peer: 'this process (API + worker + ballast)',
        peerValue: round(size, 0),
      });
      rows.push({
        metric: `(c) raw BullMQ flow chain spawning sh -c : at ${Math.round(bigPeer.rssMb)} MB RSS, per step`,
        value: round(bigChain),
        unit: 'ms',
        peer: 'the same chain in a small process',
        peerValue: round(rawChain),
      });
    } finally {
      await engine.close();
    }

    // (d) one launch from a small process, link by link
    const tools = await findLaunchTools();
    const { mode } = await probeContainment(tools);
    const whole = containedArgv(mode, tools, tools.sh, ':');
    const launcher = whole.slice(0, whole.indexOf(tools.sh));
    const launches: Array<[string, string[]]> = [
      ['node -e 0 (cold Node.js start)', [process.execPath, '-e', '0']],
      ['sh -c :', [tools.sh, '-c', ':']],
      [
        'setpriv --pdeathsig KILL -- sh -c :',
        [tools.setpriv, '--pdeathsig', 'KILL', '--', tools.sh, '-c', ':'],
      ],
      [`the launcher of ${mode} -- sh -c :`, [...launcher, tools.sh, '-c', ':']],
      [`the whole chain (${mode}), command ":"`, whole],
    ];
    const oneExec = await findLauncher();
    if (oneExec) {
      const probed = await probeContainment(tools, oneExec);
      if (probed.launcher)
        launches.push([
          `conveyor-launch (${probed.mode}, launcher.c, one exec), command ":"`,
          launcherArgv(oneExec, probed.mode, tools.sh, ':'),
        ]);
    }
    const shMs = await median(
      async () => (await peer(redisUrl, { mode: 'exec', n: 50, argv: [tools.sh, '-c', ':'] })).value,
    );
    for (const [name, argv] of launches) {
      const ms = await median(async () => (await peer(redisUrl, { mode: 'exec', n: 50, argv })).value);
      rows.push({
        metric: `(d) one launch from a small process: ${name}`,
        value: round(ms),
        unit: 'ms',
        peer: 'sh -c :',
        peerValue: round(shMs),
      });
    }
    return rows;
  },
};

export default suite;
