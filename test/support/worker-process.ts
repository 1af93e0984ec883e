/**
 * Real worker processes, as `npx conveyor worker` runs them, for tests that kill, stop or
 * restart workers. Every process started here is tracked so a test can stop what it left.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { redisUrl } from './prefix.ts';

const live = new Set<ChildProcess>();

/** Starts `conveyor worker` on the test Redis under `prefix`, local executor only, silent. */
export function spawnWorker(prefix: string, env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ['bin/conveyor.mjs', 'worker'], {
    env: {
      ...process.env,
      REDIS_URL: redisUrl(),
      CONVEYOR_PREFIX: prefix,
      WORKER_EXECUTORS: 'local',
      LOG_LEVEL: 'silent',
      ...env,
    },
    stdio: 'ignore',
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** SIGKILLs a worker and waits for it to be gone. */
export async function killWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** SIGKILLs every worker this file started that is still running. */
export async function killAllWorkers(): Promise<void> {
  await Promise.all([...live].map(killWorker));
}
