/**
 * Runs a step as a shell process on the worker, in its run's workspace, contained so that nothing
 * it starts outlives it or its worker (see containment.ts): on timeout or cancel every process of
 * the step gets SIGTERM, then SIGKILL after a grace period; when the command exits, whatever it
 * left behind is killed at once (as GitHub's runner does), so a background process holding stdout
 * never stretches a step.
 */
import { open, rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { StepError, StepInterruptedError } from '../../errors.ts';
import type { Executor, ExecutorContext, StepExecution, StepResult } from '../executor.ts';
import { parseEvents, parseOutputs } from '../outputs.ts';
import { readPrivateFile } from '../private-file.ts';
import {
  type ContainmentMode,
  containedArgv,
  findLaunchTools,
  type LaunchTools,
  launchEnv,
  probeContainment,
  type RunAs,
} from './containment.ts';
import {
  findLauncher,
  type LauncherSetting,
  launcherArgv,
  parseFilesReport,
  type RunAsWithGroups,
} from './launcher.ts';
import { groupsOf } from './run-as.ts';
import { Spawner } from './spawner.ts';
import { type RunStates, Workspaces } from './workspace.ts';

/** Options of the local executor. */
export interface LocalExecutorOptions {
  /** Shell used for `run`. @defaultValue '/bin/sh' */
  shell: string;
  /** Milliseconds between SIGTERM and SIGKILL when a step is stopped. @defaultValue 5000 */
  killGraceMs: number;
  /** Environment every step starts from. @defaultValue the worker's, without Conveyor's own settings */
  baseEnv: Record<string, string>;
  /** Where runs' workspaces live and whether they are kept. @defaultValue a `Workspaces` under the system temp dir */
  workspaces: Workspaces;
  /** Run steps as this user (`WORKER_RUN_AS`; the worker must be root). */
  runAs?: RunAs;
  /** Force a containment mode instead of probing for the strongest. */
  containment?: ContainmentMode;
  /**
   * `auto`: launch steps through `conveyor-launch` (launcher.ts) when it is found, else through
   * the chain of tools; `chain`: always the chain (`WORKER_LAUNCHER`).
   * @defaultValue 'auto'
   */
  launcher: LauncherSetting;
}

/** How this executor launches steps, decided once. */
interface Launch {
  mode: ContainmentMode;
  /** Always found: the spawner runs under `setpriv`, and the chain is the launcher's fallback. */
  tools: LaunchTools;
  /** The launcher's path when steps go through it. */
  launcher?: string;
  /** `runAs` with the groups the launcher sets. */
  runAs?: RunAsWithGroups;
}

/** Where an attempt runs and writes, and what of it the launcher makes. */
interface Places {
  /** The run's workspace. */
  workspace: string;
  /** The attempt's private directory, holding `output` and `events`. */
  dir: string;
  /** The step's working directory, and whether it is to be created (a relative `cwd`). */
  where: { dir: string; create: boolean };
  /**
   * `all`: the launcher makes the workspace and the attempt's directory and files; `attempt`:
   * only the latter (the step runs in an absolute `cwd`); `none`: the worker made them (the chain).
   */
  byLauncher: 'all' | 'attempt' | 'none';
}

/** The launcher's descriptor for its report on the files: the spawner's fourth pipe (`report`). */
const REPORT_FD = 3;

/** Variables a step never inherits from the worker: its credentials and settings. */
const WORKER_ONLY = /^(CONVEYOR_|WORKER_|REDIS_)/;

/** The worker's environment minus what steps must not see (Redis URL, API tokens, secret key). */
export function scrubbedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || WORKER_ONLY.test(name)) continue;
    out[name] = value;
  }
  return out;
}

/** An empty file for the step to write, owned by its user (one open, no write). */
async function createEmpty(path: string, owner: RunAs | undefined): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    if (owner) await handle.chown(owner.uid, owner.gid);
  } finally {
    await handle.close();
  }
}

/** The local shell executor. */
export class LocalExecutor implements Executor {
  readonly name = 'local';
  private readonly options: LocalExecutorOptions;
  private launch: Promise<Launch> | undefined;
  private spawner: Spawner | undefined;

  constructor(options: Partial<LocalExecutorOptions> = {}) {
    this.options = {
      shell: '/bin/sh',
      killGraceMs: 5000,
      baseEnv: scrubbedEnv(process.env),
      workspaces: new Workspaces({ runAs: options.runAs }),
      launcher: 'auto',
      ...options,
    };
    if (this.options.killGraceMs < 0) throw new RangeError('killGraceMs must be >= 0');
    if (!isAbsolute(this.options.shell))
      throw new RangeError(
        `shell must be an absolute path (never looked up on a step's PATH), got "${this.options.shell}"`,
      );
    if (this.options.launcher !== 'auto' && this.options.launcher !== 'chain')
      throw new RangeError(`launcher must be "auto" or "chain", got "${this.options.launcher}"`);
    if (this.options.runAs && process.getuid?.() !== 0)
      throw new RangeError('WORKER_RUN_AS needs a worker running as root');
  }

  /** How this executor contains steps, and what it launches them with (found once). */
  private setup(): Promise<Launch> {
    this.launch ??= (async () => {
      const { runAs, containment } = this.options;
      const useLauncher = this.options.launcher === 'auto';
      const [tools, found, groups] = await Promise.all([
        findLaunchTools(),
        useLauncher ? findLauncher() : undefined,
        runAs && useLauncher ? groupsOf(runAs) : [],
      ]);
      const chosen = containment
        ? { mode: containment, launcher: found }
        : await probeContainment(tools, found);
      return { tools, ...chosen, runAs: runAs && { ...runAs, groups } };
    })();
    return this.launch;
  }

  /** How this executor contains steps (probed once). */
  async containment(): Promise<ContainmentMode> {
    return (await this.setup()).mode;
  }

  /** The path of `conveyor-launch` when steps go through it, else undefined (the chain). */
  async launcherPath(): Promise<string | undefined> {
    return (await this.setup()).launcher;
  }

  async run(step: StepExecution, ctx: ExecutorContext): Promise<StepResult> {
    if (step.command === undefined)
      throw new StepError('no_command', 'the local executor runs "run" commands only', false);
    const launch = await this.setup();
    const places = await this.places(launch, step);
    const { workspace, dir, where } = places;
    const outputFile = join(dir, 'output');
    const eventsFile = join(dir, 'events');
    const owner = this.options.runAs;
    let removed = false;
    try {
      const { exitCode, signal, report } = await this.spawn(launch, step, ctx, places, {
        ...this.options.baseEnv,
        ...(owner && { HOME: workspace, USER: owner.user, LOGNAME: owner.user }),
        ...step.env,
        ...(where.create && { CONVEYOR_CREATE_CWD: where.dir }),
        CONVEYOR_OUTPUT: outputFile,
        CONVEYOR_EVENTS: eventsFile,
        CONVEYOR_IDEMPOTENCY_KEY: step.idempotencyKey,
        CONVEYOR_WORKSPACE: workspace,
      });
      // Most steps write neither file: the launcher looked once the step was gone (launcher.c).
      const files = parseFilesReport(report);
      removed = files.removed;
      if (exitCode !== 0 || ctx.signal.aborted || files.empty)
        return { exitCode, signal, outputs: {}, events: [] };
      const cap = step.limits.maxOutputBytes;
      const [outputs, events] = await Promise.all([
        readPrivateFile(outputFile, cap, '$CONVEYOR_OUTPUT'),
        readPrivateFile(eventsFile, cap, '$CONVEYOR_EVENTS'),
      ]);
      return {
        exitCode,
        signal,
        outputs: parseOutputs(outputs ?? '', cap),
        events: parseEvents(events ?? '', cap),
      };
    } finally {
      // Off the step's critical path (unless the launcher did it): the run's end removes whatever
      // an attempt left (workspace.ts).
      if (!removed) rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  /**
   * The attempt's places: the run's workspace, the attempt's private directory (with the empty
   * files `output` and `events` the step writes) and where the step starts. Through the launcher,
   * the launcher makes them (launcher.c `--workspace`, `--attempt-dir`), so the worker spends no
   * round trip on them but for an absolute `cwd`, which must exist before the spawner enters it;
   * through the chain, the worker makes them here, the workspace and the directory side by side.
   */
  private async places(launch: Launch, step: StepExecution): Promise<Places> {
    const { workspaces } = this.options;
    const { runId, cwd } = step;
    if (launch.launcher) {
      const [workspace, dir] = await Promise.all([
        cwd && isAbsolute(cwd) ? workspaces.forRun(runId) : workspaces.pathFor(runId),
        workspaces.attemptPath(runId),
      ]);
      // A relative cwd (or none) is checked as text: no file-system call.
      const where = await workspaces.cwdFor(runId, cwd, workspace);
      const inWorkspace = where.create || where.dir === workspace;
      return { workspace, dir, where, byLauncher: inWorkspace ? 'all' : 'attempt' };
    }
    const [workspace, dir] = await Promise.all([workspaces.forRun(runId), workspaces.attemptDir(runId)]);
    const where = await workspaces.cwdFor(runId, cwd, workspace);
    const owner = this.options.runAs;
    await Promise.all([join(dir, 'output'), join(dir, 'events')].map((p) => createEmpty(p, owner)));
    return { workspace, dir, where, byLauncher: 'none' };
  }

  private async spawn(
    launch: Launch,
    step: StepExecution,
    ctx: ExecutorContext,
    places: Places,
    env: Record<string, string>,
  ): Promise<{ exitCode: number | null; signal: string | null; report?: string }> {
    const launcherEnv = launchEnv(env);
    const { shell } = this.options;
    const { workspace, dir, where, byLauncher } = places;
    // Only a launcher that outlives its command (a namespace's) can report on the files after it.
    const report = launch.launcher !== undefined && launch.mode !== 'process-group';
    const argvFrom = (spawnerPid: number | undefined) =>
      launch.launcher
        ? launcherArgv(launch.launcher, launch.mode, shell, step.command!, {
            runAs: launch.runAs,
            parent: spawnerPid,
            workspace: byLauncher === 'all' ? workspace : undefined,
            attemptDir: dir,
            reportFd: report ? REPORT_FD : undefined,
          })
        : containedArgv(launch.mode, launch.tools, shell, step.command!, launch.runAs, launcherEnv);
    // The spawner enters an existing directory; one the launcher makes, the launcher enters.
    const cwd = byLauncher === 'all' ? '/' : where.create ? workspace : where.dir;
    this.spawner ??= new Spawner({ setpriv: launch.tools.setpriv });
    const child = this.spawner.spawn(
      (spawnerPid) => {
        const argv = argvFrom(spawnerPid);
        return { file: argv[0]!, args: argv.slice(1), cwd, env: launcherEnv, report };
      },
      (stream, chunk) => ctx.log(stream, chunk),
    );
    let killTimer: NodeJS.Timeout | undefined;
    let stoppedWith: NodeJS.Signals | undefined;
    const onAbort = () => {
      stoppedWith = 'SIGTERM';
      child.kill('SIGTERM');
      // A worker stopping past its grace already gave the step its time: no second grace.
      const grace =
        ctx.signal.reason instanceof StepInterruptedError
          ? Math.min(500, this.options.killGraceMs)
          : this.options.killGraceMs;
      killTimer = setTimeout(() => {
        stoppedWith = 'SIGKILL';
        // The launcher's death tears down the step's PID namespace, processes in other groups included.
        child.kill('SIGKILL');
      }, grace);
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    if (ctx.signal.aborted) onAbort();
    try {
      const { exitCode: code, signal, report } = await child.exited;
      // A contained step reports a signal death as 128+n (the init's status): name the signal we sent.
      const byUs = stoppedWith && code !== null && code > 128 ? stoppedWith : null;
      return { exitCode: byUs ? null : code, signal: signal ?? byUs, report };
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
    }
  }

  /** The pid of the process that forks this executor's steps, while one runs (diagnostics, tests). */
  spawnerPid(): number | undefined {
    return this.spawner?.pid;
  }

  async describe(): Promise<{ details: Record<string, unknown>; warning?: string }> {
    const { mode: containment, launcher } = await this.setup();
    return {
      details: {
        containment,
        launcher: launcher ?? 'chain',
        workspaces: this.options.workspaces.options.baseDir,
        runAs: this.options.runAs?.user || this.options.runAs?.uid,
      },
      warning:
        containment === 'process-group'
          ? 'no PID namespace for local steps (needs root or user namespaces): a process a step moves to a session of its own with setsid can outlive the step'
          : undefined,
    };
  }

  /** Removes the ended run's workspace. */
  async runEnded(runId: string): Promise<void> {
    await this.options.workspaces.remove(runId);
  }

  /** Removes the workspaces of runs that ended while this worker was not listening. */
  async sweep(states: RunStates): Promise<void> {
    await this.options.workspaces.sweep(states);
  }

  async close(): Promise<void> {
    await this.spawner?.close();
  }
}
