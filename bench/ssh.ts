/**
 * SSH executor benchmark, against real OpenSSH sshd instances on this machine (test/support).
 * Steps run through the resident agent (src/workers/ssh/agent-script.ts) on a warm pool.
 *
 * (a) a chain of 40 sequential SSH steps `run: true` on one host, per step, against the OpenSSH
 *     client over a ControlMaster connection (`ssh -S`, one client process per command, as
 *     scripts do) on the same sshd; also against a bare ssh2 `exec true` on the same pool (what
 *     a channel per step costs) and a fresh `ssh` connection per command;
 * (b) 200 steps over 10 hosts, 20 at a time, steps per second, against `ssh -S` over 10
 *     ControlMasters at the same concurrency. "10 hosts" are 10 sshd processes on 10 ports of
 *     this machine, each its own inventory entry with its own connection: the SSH side is real,
 *     but every sshd, shell and client shares the same two cores;
 * (c) 200 steps on one host, 8 at a time: one connection, one agent per channel (the pool's
 *     default cap), against `ssh -S` over one ControlMaster at the same concurrency;
 * (d) the chain of (a) as a workflow through the engine (API, Redis, worker, 40 steps each
 *     needing the previous one, `hosts:` an inventory entry), submit to finish, per step.
 *
 * Each figure is the median of TRIALS trials, the two sides interleaved (this VM is noisy).
 * Needs root and openssh-server (like the tests). Runnable alone: `npm run bench ssh`.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateSecretKey, parseSecretKey } from '../src/secrets/index.ts';
import type { ExecutorContext, StepExecution } from '../src/workers/executor.ts';
import { type HostTarget, inventoryResolver, SshExecutor } from '../src/workers/ssh/index.ts';
import { startEngine } from '../test/support/engine.ts';
import { type SshdHandle, startSshd } from '../test/support/sshd.ts';
import { benchPrefix, round, runEnds } from './support.ts';
import type { BenchContext, BenchRow, BenchSuite } from './types.ts';

const CHAIN = 40;
const TRIALS = 3;
const FRESH = 10;
const WARMUP = 20;
const FANOUT_STEPS = 200;
const HOSTS = 10;
const CONCURRENCY = 20;
const ONE_HOST_CONCURRENCY = 8;

const ctx = (): ExecutorContext => ({ signal: new AbortController().signal, log() {}, progress() {} });

function step(host: HostTarget, i: number): StepExecution {
  return {
    runId: 'run_bench',
    stepId: `s${i}`,
    attempt: 1,
    command: 'true',
    env: {},
    secrets: [],
    idempotencyKey: `run_bench:s${i}`,
    limits: { maxOutputBytes: 1024 * 1024 },
    options: { host },
    context: {},
  };
}

/** OpenSSH client arguments for one sshd: its key, strict checking against its host key. */
function sshArgs(sshd: SshdHandle, extra: string[] = []): string[] {
  const knownHosts = join(sshd.dir, 'bench_known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine()}\n`);
  return [
    '-i',
    sshd.clientKeyPath,
    '-p',
    String(sshd.port),
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'LogLevel=ERROR',
    '-F',
    '/dev/null',
    ...extra,
    'conveyor-ssh@127.0.0.1',
  ];
}

function ssh(args: string[], command?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', command ? [...args, command] : args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`ssh exited ${code}: ${err.trim()}`)),
    );
  });
}

/** Mean milliseconds per call of `fn`, called `n` times one after another. */
async function perCall(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return (performance.now() - started) / n;
}

async function pooled<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < n) await fn(next++);
    }),
  );
  return performance.now() - started;
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

/** Runs each measurement TRIALS times, interleaved, and returns the median of each. */
async function interleaved(measures: Array<() => Promise<number>>): Promise<number[]> {
  const runs: number[][] = measures.map(() => []);
  for (let t = 0; t < TRIALS; t++) {
    for (const [i, m] of measures.entries()) runs[i]!.push(await m());
  }
  return runs.map(median);
}

/** (d): per-step time of a CHAIN-step SSH workflow on `sshd`, submit to finish, median of TRIALS. */
async function engineChain(redisUrl: string, sshd: SshdHandle): Promise<number> {
  const engine = await startEngine(redisUrl, benchPrefix('ssh'), {
    secretKey: parseSecretKey(generateSecretKey()),
    executors: ({ inventory, secrets }) => [
      new SshExecutor({
        resolveHost: inventoryResolver({ inventory, secrets }),
      }),
    ],
  });
  const ends = await runEnds(engine.api);
  try {
    await engine.request('PUT', '/v1/secrets/bench_key', { value: sshd.clientKey });
    await engine.request('PUT', '/v1/hosts/bench', sshd.inventoryEntry('bench_key'));
    const steps: Record<string, unknown> = {};
    for (let i = 0; i < CHAIN; i++) {
      steps[`s${i}`] = { hosts: 'bench', run: 'true', ...(i ? { needs: [`s${i - 1}`] } : {}) };
    }
    const once = async () => {
      const started = performance.now();
      const run = await engine.submit({ name: 'ssh-chain', steps });
      await ends.finished(run.id);
      return (performance.now() - started) / CHAIN;
    };
    await once();
    const [perStep] = await interleaved([once]);
    return perStep!;
  } finally {
    ends.close();
    await engine.close();
  }
}

const suite: BenchSuite = {
  name: 'ssh',
  async run({ redisUrl }: BenchContext): Promise<BenchRow[]> {
    if (process.getuid?.() !== 0 || !existsSync('/usr/sbin/sshd')) {
      console.warn('bench ssh: skipped (needs root and openssh-server, like the SSH tests)');
      return [];
    }
    const hosts = await Promise.all(Array.from({ length: HOSTS }, () => startSshd()));
    const masters: string[][] = [];
    const ex = new SshExecutor();
    try {
      const targets = hosts.map((h, i) => h.target({ name: `bench-${i}` }));
      const first = hosts[0]!;
      const target = targets[0]!;

      const run = async (t: HostTarget, i: number) => {
        const r = await ex.run(step(t, i), ctx());
        if (r.exitCode !== 0) throw new Error(`step failed: ${JSON.stringify(r.error)}`);
      };

      for (const [i, h] of hosts.entries()) {
        const sock = join(h.dir, `cm-${i}.sock`);
        const control = ['-o', `ControlPath=${sock}`];
        await ssh(
          sshArgs(h, ['-o', 'ControlMaster=yes', '-o', 'ControlPersist=yes', '-f', '-N', ...control]),
        );
        masters.push(sshArgs(h, [...control, '-o', 'ControlMaster=no']));
      }
      const cmArgs = masters[0]!;

      // (a) a chain on one host, everything against the same sshd; both sides warm.
      for (let i = 0; i < WARMUP; i++) await run(target, i);
      for (let i = 0; i < WARMUP; i++) await ssh(cmArgs, 'true');
      const [agentMs, cmMs, execMs] = await interleaved([
        () => perCall(CHAIN, (i) => run(target, i)),
        () => perCall(CHAIN, () => ssh(cmArgs, 'true')),
        () => perCall(CHAIN, () => ex.pool.run(target, 'true')),
      ]);
      const freshArgs = sshArgs(first, ['-o', 'ControlPath=none']);
      const freshMs = await perCall(FRESH, () => ssh(freshArgs, 'true'));

      // (b) 200 steps over 10 hosts, CONCURRENCY at a time (as a worker with that many slots).
      // Both sides start warm: agents up on every host, as the ControlMasters are.
      await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => run(targets[i % HOSTS]!, i)));
      const [fanoutMs, cmFanoutMs] = await interleaved([
        () => pooled(FANOUT_STEPS, CONCURRENCY, (i) => run(targets[i % HOSTS]!, i)),
        () => pooled(FANOUT_STEPS, CONCURRENCY, (i) => ssh(masters[i % HOSTS]!, 'true')),
      ]);

      // (c) the same on one host: one connection, 8 agents on it.
      const [oneHostMs, cmOneHostMs] = await interleaved([
        () => pooled(FANOUT_STEPS, ONE_HOST_CONCURRENCY, (i) => run(target, i)),
        () => pooled(FANOUT_STEPS, ONE_HOST_CONCURRENCY, () => ssh(cmArgs, 'true')),
      ]);

      // (d) the chain through the engine, when the suite has a Redis (npm run bench).
      const engineMs = redisUrl ? await engineChain(redisUrl, first) : undefined;

      const rows: BenchRow[] = [
        {
          metric: `(a) chain of ${CHAIN} SSH \`run: true\` steps on one host, per step (median of ${TRIALS})`,
          value: round(agentMs!),
          unit: 'ms',
          peer: 'OpenSSH ssh -S over a ControlMaster',
          peerValue: round(cmMs!),
          target: '≤ 0.5× peer (stretch 0.25×)',
        },
        {
          metric: '(a) same, against a bare ssh2 exec `true` on the same pool (a channel per step)',
          value: round(agentMs!),
          unit: 'ms',
          peer: 'bare ssh2 exec on the same pool',
          peerValue: round(execMs!),
        },
        {
          metric: '(a) same, against a fresh ssh connection per command',
          value: round(agentMs!),
          unit: 'ms',
          peer: 'fresh ssh connection per command',
          peerValue: round(freshMs),
          target: '≪ 1× peer',
        },
        {
          metric: `(b) ${FANOUT_STEPS} steps over ${HOSTS} hosts (10 sshd), ${CONCURRENCY} at a time (median of ${TRIALS})`,
          value: round((FANOUT_STEPS / fanoutMs!) * 1000, 1),
          unit: 'steps/s',
          peer: `ssh -S over ${HOSTS} ControlMasters`,
          peerValue: round((FANOUT_STEPS / cmFanoutMs!) * 1000, 1),
          target: '≥ 3× peer',
        },
        {
          metric: `(c) ${FANOUT_STEPS} steps on one host, ${ONE_HOST_CONCURRENCY} at a time (median of ${TRIALS})`,
          value: round((FANOUT_STEPS / oneHostMs!) * 1000, 1),
          unit: 'steps/s',
          peer: 'ssh -S over one ControlMaster',
          peerValue: round((FANOUT_STEPS / cmOneHostMs!) * 1000, 1),
        },
      ];
      if (engineMs !== undefined) {
        rows.push({
          metric: `(d) chain of ${CHAIN} SSH steps as a workflow through the engine, submit to finish, per step`,
          value: round(engineMs),
          unit: 'ms',
          peer: 'OpenSSH ssh -S over a ControlMaster (from (a))',
          peerValue: round(cmMs!),
          target: '≤ 0.5× peer (stretch 0.25×)',
        });
      }
      return rows;
    } finally {
      await ex.close();
      await Promise.all(
        masters.map((args) => ssh([...args.slice(0, -1), '-O', 'exit', args.at(-1)!]).catch(() => {})),
      );
      await Promise.all(hosts.map((h) => h.stop()));
    }
  },
};

export default suite;
