/**
 * Runs a step as a shell process on the worker: `/bin/sh -c` in its own process group, so a
 * timeout or cancel (SIGTERM, then SIGKILL after a grace period) reaches every process the step
 * started, grandchildren included. Processes a step leaves behind are killed when it ends, as
 * GitHub's runner does.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StepError } from '../../errors.ts';
import type { Executor, ExecutorContext, StepExecution, StepResult } from '../executor.ts';
import { parseEvents, parseOutputs } from '../outputs.ts';

/** Options of the local executor. */
export interface LocalExecutorOptions {
  /** Shell used for `run`. @defaultValue '/bin/sh' */
  shell: string;
  /** Milliseconds between SIGTERM and SIGKILL when a step is stopped. @defaultValue 5000 */
  killGraceMs: number;
  /** Environment every step starts from. @defaultValue the worker's, without Conveyor's own settings */
  baseEnv: Record<string, string>;
  /** Directory a step runs in when it sets no `cwd`. @defaultValue the worker's working directory */
  defaultCwd: string;
}

/** The worker's Redis settings (URL, password, and the files holding them). */
const REDIS_SETTINGS = /^REDIS_(URL|PASSWORD)(_FILE)?$/;

/** The worker's environment minus what steps must not see (Redis URL, API tokens, secret key). */
export function scrubbedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (name.startsWith('CONVEYOR_') || REDIS_SETTINGS.test(name) || name.startsWith('WORKER_')) continue;
    out[name] = value;
  }
  return out;
}

/** The local shell executor. */
export class LocalExecutor implements Executor {
  readonly name = 'local';
  private readonly options: LocalExecutorOptions;

  constructor(options: Partial<LocalExecutorOptions> = {}) {
    this.options = {
      shell: '/bin/sh',
      killGraceMs: 5000,
      baseEnv: scrubbedEnv(process.env),
      defaultCwd: process.cwd(),
      ...options,
    };
    if (this.options.killGraceMs < 0) throw new RangeError('killGraceMs must be >= 0');
  }

  async run(step: StepExecution, ctx: ExecutorContext): Promise<StepResult> {
    if (step.command === undefined)
      throw new StepError('no_command', 'the local executor runs "run" commands only', false);
    const dir = await mkdtemp(join(tmpdir(), 'conveyor-step-'));
    const outputFile = join(dir, 'output');
    const eventsFile = join(dir, 'events');
    await Promise.all([writeFile(outputFile, ''), writeFile(eventsFile, '')]);
    try {
      const { exitCode, signal } = await this.spawn(step, ctx, {
        ...this.options.baseEnv,
        ...step.env,
        CONVEYOR_OUTPUT: outputFile,
        CONVEYOR_EVENTS: eventsFile,
        CONVEYOR_IDEMPOTENCY_KEY: step.idempotencyKey,
      });
      if (exitCode !== 0 || ctx.signal.aborted) return { exitCode, signal, outputs: {}, events: [] };
      const [outputs, events] = await Promise.all([
        readFile(outputFile, 'utf8'),
        readFile(eventsFile, 'utf8'),
      ]);
      return {
        exitCode,
        signal,
        outputs: parseOutputs(outputs, step.limits.maxOutputBytes),
        events: parseEvents(events, step.limits.maxOutputBytes),
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private spawn(
    step: StepExecution,
    ctx: ExecutorContext,
    env: Record<string, string>,
  ): Promise<{ exitCode: number | null; signal: string | null }> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.options.shell, ['-c', step.command!], {
        cwd: step.cwd ?? this.options.defaultCwd,
        env,
        detached: true, // its own process group: one kill reaches the whole tree
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const group = child.pid;
      const killGroup = (signal: NodeJS.Signals) => {
        if (group === undefined) return;
        try {
          process.kill(-group, signal);
        } catch {
          // ESRCH: the group is already gone.
        }
      };
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        killGroup('SIGTERM');
        killTimer = setTimeout(() => killGroup('SIGKILL'), this.options.killGraceMs);
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      if (ctx.signal.aborted) onAbort();

      child.stdout.on('data', (chunk: Buffer) => ctx.log('stdout', chunk));
      child.stderr.on('data', (chunk: Buffer) => ctx.log('stderr', chunk));
      let exit: { exitCode: number | null; signal: string | null } | undefined;
      child.once('exit', (code, signal) => {
        exit = { exitCode: code, signal };
        // Leftover background processes would hold the pipes open and outlive the step.
        killGroup('SIGKILL');
      });
      child.once('error', (err) => {
        ctx.signal.removeEventListener('abort', onAbort);
        clearTimeout(killTimer);
        reject(
          new StepError('spawn_failed', `could not start ${this.options.shell}: ${err.message}`, false, {
            cause: err,
          }),
        );
      });
      child.once('close', () => {
        ctx.signal.removeEventListener('abort', onAbort);
        clearTimeout(killTimer);
        resolve(exit ?? { exitCode: child.exitCode, signal: child.signalCode });
      });
    });
  }

  async close(): Promise<void> {}
}
