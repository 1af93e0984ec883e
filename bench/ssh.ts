/**
 * SSH executor benchmark, against real OpenSSH sshd instances on this machine (test/support):
 *
 * (a) per-command latency of an SSH step `run: true` on a warm pool, sequential, against
 *     the OpenSSH client over a ControlMaster connection (`ssh -S`, one process per command) and
 *     a fresh `ssh` connection per command; raw ssh2 `exec true` on the same pool shows what
 *     the step wrapper (setsid, outputs files, kill watcher) costs on top of SSH itself;
 * (b) 200 steps over 10 hosts (10 sshd), 20 at a time, steps per second, against `ssh -S` over
 *     10 ControlMasters at the same concurrency.
 *
 * Needs root and openssh-server (like the tests). Runnable alone:
 *   node --import tsx -e "import('./bench/ssh.ts').then(async m => console.log(await m.default.run({redisUrl:''})))"
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ExecutorContext, StepExecution } from '../src/workers/executor.ts';
import { type HostTarget, SshExecutor } from '../src/workers/ssh/index.ts';
import { type SshdHandle, startSshd } from '../test/support/sshd.ts';
import { percentile, round } from './support.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const SEQUENTIAL = 200;
const FRESH = 30;
const WARMUP = 20;
const FANOUT_STEPS = 200;
const HOSTS = 10;
const CONCURRENCY = 20;

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

async function timeEach(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out;
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

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const suite: BenchSuite = {
  name: 'ssh',
  async run(): Promise<BenchRow[]> {
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

      // (a) sequential per-command latency, everything against the same sshd.
      for (let i = 0; i < WARMUP; i++) await ex.run(step(target, i), ctx());
      const executor = await timeEach(SEQUENTIAL, async (i) => {
        const r = await ex.run(step(target, i), ctx());
        if (r.exitCode !== 0) throw new Error(`step failed: ${JSON.stringify(r.error)}`);
      });
      const raw = await timeEach(SEQUENTIAL, () => ex.pool.run(target, 'true'));

      for (const [i, h] of hosts.entries()) {
        const sock = join(h.dir, `cm-${i}.sock`);
        const control = ['-o', `ControlPath=${sock}`];
        await ssh(
          sshArgs(h, ['-o', 'ControlMaster=yes', '-o', 'ControlPersist=yes', '-f', '-N', ...control]),
        );
        masters.push(sshArgs(h, [...control, '-o', 'ControlMaster=no']));
      }
      const cmArgs = masters[0]!;
      for (let i = 0; i < WARMUP; i++) await ssh(cmArgs, 'true');
      const controlMaster = await timeEach(SEQUENTIAL, () => ssh(cmArgs, 'true'));
      const freshArgs = sshArgs(first, ['-o', 'ControlPath=none']);
      const fresh = await timeEach(FRESH, () => ssh(freshArgs, 'true'));

      // (b) 200 steps over 10 hosts, CONCURRENCY at a time (as a worker with that many slots).
      // Both sides start warm: one step per host first, as the ControlMasters are already up.
      await Promise.all(targets.map((t, i) => ex.run(step(t, i), ctx())));
      const fanoutMs = await pooled(FANOUT_STEPS, CONCURRENCY, async (i) => {
        const r = await ex.run(step(targets[i % HOSTS]!, i), ctx());
        if (r.exitCode !== 0) throw new Error(`step failed: ${JSON.stringify(r.error)}`);
      });
      const cmFanoutMs = await pooled(FANOUT_STEPS, CONCURRENCY, (i) => ssh(masters[i % HOSTS]!, 'true'));

      const rows: BenchRow[] = [
        {
          metric: '(a) `run: true` over SSH, warm pool, per command, mean',
          value: round(mean(executor)),
          unit: 'ms',
          peer: 'OpenSSH ssh + ControlMaster',
          peerValue: round(mean(controlMaster)),
          target: '≤ 1.0× peer',
        },
        {
          metric: '(a) `run: true` over SSH, warm pool, per command, p50',
          value: round(percentile(executor, 50)),
          unit: 'ms',
          peer: 'OpenSSH ssh + ControlMaster',
          peerValue: round(percentile(controlMaster, 50)),
        },
        {
          metric: '(a) `run: true` over SSH, warm pool, per command, p99',
          value: round(percentile(executor, 99)),
          unit: 'ms',
          peer: 'OpenSSH ssh + ControlMaster',
          peerValue: round(percentile(controlMaster, 99)),
        },
        {
          metric: '(a) `run: true` over SSH, warm pool, per command, mean',
          value: round(mean(executor)),
          unit: 'ms',
          peer: 'fresh ssh connection per command',
          peerValue: round(mean(fresh)),
          target: '≪ 1× peer',
        },
        {
          metric: '(a) step wrapper cost: executor step vs bare ssh2 exec `true`, mean',
          value: round(mean(executor)),
          unit: 'ms',
          peer: 'bare ssh2 exec on the same pool',
          peerValue: round(mean(raw)),
        },
        {
          metric: `(b) ${FANOUT_STEPS} steps over ${HOSTS} hosts, ${CONCURRENCY} at a time`,
          value: round((FANOUT_STEPS / fanoutMs) * 1000, 1),
          unit: 'steps/s',
          peer: `ssh -S over ${HOSTS} ControlMasters`,
          peerValue: round((FANOUT_STEPS / cmFanoutMs) * 1000, 1),
          target: '≥ 1.0× peer',
        },
      ];
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
