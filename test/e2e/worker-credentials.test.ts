/**
 * The real entry point (`node bin/conveyor.mjs worker`) keeps its credentials out of the
 * environment of the process that runs steps: it re-executes itself without them, passes them
 * on a pipe, and supervises (signals in, exit status out).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecretKey } from '../../src/secrets/index.ts';
import { startEngine } from '../support/engine.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { type RedisHandle, spawnRedis } from '../support/redis-server.ts';

const PASSWORD = 'redis-pw-7f3a9c';
const KEY = generateSecretKey();
const TOKENS = 'admin:tok-admin-51e2c7,read:tok-read-0b9d44';
const WEBHOOK = 'whsec-3c8f1a2b';
const prefix = testPrefix(import.meta.url);
let redis: RedisHandle;
let protectedUrl: string;
const started: ChildProcess[] = [];

beforeAll(async () => {
  // A Redis of this file's own, with a password (the shared one has none).
  redis = await spawnRedis();
  const admin = new Redis(redis.url);
  await admin.config('SET', 'requirepass', PASSWORD);
  admin.disconnect();
  protectedUrl = redis.url.replace('redis://', `redis://:${PASSWORD}@`);
});
afterAll(async () => {
  for (const child of started)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await redis.stop();
  await dropPrefix(redisUrl(), prefix);
});

/** Starts `node bin/conveyor.mjs worker` with `env` over a clean base; collects its output. */
function startWorker(env: Record<string, string>) {
  const base: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(CONVEYOR|REDIS|WORKER)_/.test(name)) base[name] = value;
  }
  const child = spawn(process.execPath, ['bin/conveyor.mjs', 'worker'], {
    env: { ...base, CONVEYOR_PREFIX: prefix, WORKER_EXECUTORS: 'local', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  const output = { stdout: '', stderr: '' };
  child.stdout!.on('data', (chunk: Buffer) => {
    output.stdout += chunk;
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output.stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  /** The first pino line whose `msg` is `msg`. */
  const line = (msg: string) =>
    new Promise<{ pid: number }>((resolve, reject) => {
      const look = () => {
        const found = output.stdout
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { msg: string; pid: number })
          .find((l) => l.msg === msg);
        if (found) resolve(found);
      };
      child.stdout!.on('data', look);
      look();
      void exited.then(() => reject(new Error(`exited before "${msg}": ${output.stdout}${output.stderr}`)));
    });
  return { child, output, exited, line };
}

/** Pids whose parent is `pid` (from /proc/<pid>/stat: the field after the parenthesised name). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * How a worker stopped by SIGTERM may exit: cleanly, or killed by the signal itself when it came
 * before main() installed its handler (it logs "worker ready" just before; nothing tells when).
 */
const STOPPED = [
  { code: 0, signal: null },
  { code: null, signal: 'SIGTERM' },
];

/** Whether `pid` is gone (or a zombie, its exit done) within a few seconds; not our child, so no exit event. */
async function exitedOrZombie(pid: number): Promise<boolean> {
  for (let tries = 0; tries < 250; tries++) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return true;
    }
    if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');

describe('the worker entry point', () => {
  it('runs the worker in a child whose environ holds no credential, and forwards SIGTERM and the exit', async () => {
    const w = startWorker({
      REDIS_URL: protectedUrl,
      CONVEYOR_SECRET_KEY: KEY,
      CONVEYOR_API_TOKENS: TOKENS,
      CONVEYOR_WEBHOOK_SECRET: WEBHOOK,
    });
    const ready = await w.line('worker ready');
    // The worker runs in the child, and it reached the password-protected Redis.
    expect(childrenOf(w.child.pid!)).toEqual([ready.pid]);
    const childEnv = environ(ready.pid);
    for (const secret of [KEY, PASSWORD, 'tok-admin-51e2c7', 'tok-read-0b9d44', WEBHOOK]) {
      expect(childEnv.filter((entry) => entry.includes(secret))).toEqual([]);
    }
    expect(childEnv).toContain(`REDIS_URL=${redis.url}`);
    expect(childEnv.filter((entry) => /^(CONVEYOR_SECRET_KEY|CONVEYOR_API_TOKENS)=/.test(entry))).toEqual([]);
    // What Linux cannot change: the supervisor's own initial environment keeps them.
    expect(environ(w.child.pid!)).toContain(`CONVEYOR_SECRET_KEY=${KEY}`);

    // A step of that worker finds none in its own environment or any it can read (its PID
    // namespace shows it only its own processes).
    const engine = await startEngine(protectedUrl, prefix, { worker: false });
    try {
      const run = await engine.submit({
        name: 'peek',
        steps: {
          peek: {
            run: `env; for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < "$f"; done; [ -e /proc/${ready.pid} ] || echo "worker hidden"`,
          },
        },
      });
      const { run: done } = await engine.waitForRun(run.id);
      expect(done.status).toBe('succeeded');
      const log = (await engine.request('GET', `/v1/runs/${run.id}/steps/peek/logs`)).body as string;
      expect(log).toContain('worker hidden');
      expect(log).toContain('CONVEYOR_STEP_ID=peek');
      for (const secret of [KEY, PASSWORD, 'tok-admin-51e2c7', WEBHOOK]) expect(log).not.toContain(secret);
    } finally {
      await engine.close();
    }

    w.child.kill('SIGTERM');
    expect(STOPPED).toContainEqual(await w.exited);
    expect(existsSync(`/proc/${ready.pid}`)).toBe(false);
  });

  it('exits as the child did: its exit code, or the signal that killed it', async () => {
    // A bad key is reported by the child: the key did arrive there, through the pipe.
    const bad = startWorker({ REDIS_URL: protectedUrl, CONVEYOR_SECRET_KEY: 'not-a-key' });
    expect(await bad.exited).toEqual({ code: 1, signal: null });
    expect(bad.output.stderr).toMatch(/CONVEYOR_SECRET_KEY/);

    const killed = startWorker({ REDIS_URL: protectedUrl, CONVEYOR_SECRET_KEY: KEY });
    const ready = await killed.line('worker ready');
    expect(ready.pid).not.toBe(killed.child.pid); // the signal hits the child, not the supervisor
    process.kill(ready.pid, 'SIGKILL');
    expect(await killed.exited).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('stops the worker when the supervisor itself is killed outright', async () => {
    const w = startWorker({ REDIS_URL: protectedUrl, CONVEYOR_SECRET_KEY: KEY });
    const ready = await w.line('worker ready');
    // The child shares the supervisor's stdout: the pipe ends when the child is gone too.
    const ended = new Promise((resolve) => w.child.stdout!.once('end', resolve));
    w.child.kill('SIGKILL');
    await ended;
    expect(w.output.stdout).toContain('"msg":"shutting down"');
    expect(await exitedOrZombie(ready.pid)).toBe(true);
  });

  it('does not re-execute when there is no credential in the environment', async () => {
    const w = startWorker({ REDIS_URL: redisUrl() });
    const ready = await w.line('worker ready');
    expect(ready.pid).toBe(w.child.pid);
    w.child.kill('SIGTERM');
    expect(STOPPED).toContainEqual(await w.exited);
  });
});
