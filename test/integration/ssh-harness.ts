/**
 * What the SSH executor tests share: a step builder and a recording `ExecutorContext` whose waits
 * are driven by the remote output itself (no sleeps).
 */
import { performance } from 'node:perf_hooks';
import type { ExecutorContext, StepExecution } from '../../src/workers/executor.ts';
import type { HostTarget } from '../../src/workers/ssh/index.ts';
import { remoteProcesses, SSH_USER } from '../support/sshd.ts';

/** A shell step on `host`, with the engine's defaults. */
export function sshStep(
  host: HostTarget | string,
  command: string,
  extra: Partial<StepExecution> & { sudo?: boolean } = {},
): StepExecution {
  const { sudo, ...rest } = extra;
  return {
    runId: 'run_ssh',
    stepId: 'step',
    attempt: 1,
    command,
    env: {},
    secrets: [],
    idempotencyKey: 'run_ssh:step',
    limits: { maxOutputBytes: 1024 * 1024 },
    options: { host, ...(sudo ? { sudo } : {}) },
    context: {},
    ...rest,
  };
}

/** Records logs; `waitFor` resolves when the output matches. */
export class Recorder implements ExecutorContext {
  readonly controller = new AbortController();
  readonly signal = this.controller.signal;
  stdout = '';
  stderr = '';
  /** When each chunk arrived (ms since the recorder was made), to prove streaming. */
  readonly arrivals: number[] = [];
  private readonly started = performance.now();
  private waiters: Array<{ pattern: RegExp; resolve(): void }> = [];

  log(stream: 'stdout' | 'stderr', chunk: string | Buffer): void {
    this.arrivals.push(performance.now() - this.started);
    if (stream === 'stdout') this.stdout += chunk.toString();
    else this.stderr += chunk.toString();
    this.waiters = this.waiters.filter((w) => {
      if (!w.pattern.test(this.stdout + this.stderr)) return true;
      w.resolve();
      return false;
    });
  }

  progress(): void {}

  waitFor(pattern: RegExp): Promise<void> {
    if (pattern.test(this.stdout + this.stderr)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ pattern, resolve }));
  }

  abort(reason: unknown = new Error('aborted by test')): void {
    this.controller.abort(reason);
  }
}

/**
 * Waits until no process of the test user shows `text` (what `ps -u <user> -o pid,args` lists):
 * signals are delivered asynchronously, so "gone" may trail the step's end by a moment. Fails
 * with the survivors after `timeoutMs`.
 */
export async function expectNoRemoteProcess(text: string, user = SSH_USER, timeoutMs = 3_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = remoteProcesses(user, text);
    if (left.length === 0) return;
    if (performance.now() > deadline) {
      throw new Error(`remote processes still running: ${left.map((p) => `${p.pid} ${p.args}`).join('; ')}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Polls `condition` until true (for effects on the host with no event to await), or fails; generous, since a loaded 2-core CI machine is slow. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
