/**
 * Finds a step's processes from outside, whatever pid namespace or session they are in: every
 * process a step starts inherits its environment, so a marker variable in the step's `env`
 * names them all (readable in /proc/<pid>/environ by root or the same user).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Host pids of live processes whose environment has `name=value` (zombies do not count). */
export function processesWithEnv(name: string, value: string): number[] {
  const needle = `${name}=${value}`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (!env.includes(needle)) continue;
      const state = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.[0];
      if (state !== 'Z' && state !== 'X') pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

/** A fresh marker value for `processesWithEnv`. */
export function marker(): string {
  return `m${process.pid}x${Math.random().toString(36).slice(2)}`;
}

/** Whether `pid` is a live process (a zombie, waiting to be reaped, is not). */
export function isAlive(pid: number): boolean {
  try {
    return !/\nState:\t[ZX]/.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Polls `check` until it is true or `ms` pass; returns whether it became true. For states that
 * announce themselves with no event the test could await, such as another process's death, a
 * replica's promotion or a count another process keeps.
 */
export async function eventually(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}
