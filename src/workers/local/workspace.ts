/**
 * A working directory per run for its local steps, under `WORKER_WORKSPACE_DIR` (default
 * `<system temp>/conveyor-workspaces`): the steps of one run share it, no run sees another's, and
 * nothing runs in the engine's own directory. A run's workspace is removed when the run ends
 * (unless kept for debugging); a sweep at start removes those whose run ended while this worker
 * was down.
 */

import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { StepError } from '../../errors.ts';
import type { RunAs } from './containment.ts';

/** Options of the workspaces. */
export interface WorkspaceOptions {
  /** Where workspaces live. @defaultValue `<os.tmpdir()>/conveyor-workspaces` */
  baseDir: string;
  /** Keep workspaces after their run ends (`CONVEYOR_KEEP_WORKSPACES`). @defaultValue false */
  keep: boolean;
  /** Owner of each workspace (`WORKER_RUN_AS`). */
  runAs?: RunAs;
}

/** What the worker's Redis says of runs: ended, still active, or unknown to it. */
export type RunStates = (runIds: string[]) => Promise<Array<'ended' | 'active' | 'unknown'>>;

/** How old the workspace of a run unknown to this worker's Redis must be before a sweep takes it. */
const UNKNOWN_RUN_MAX_AGE_MS = 7 * 24 * 3600_000;

/** Where attempts' private files live, under the base directory. */
const ATTEMPTS = '.attempts';

/** Run ids are `run_` plus URL-safe characters; anything else in the base dir is not ours. */
const RUN_DIR = /^run_[A-Za-z0-9_-]{1,100}$/;

function checkRunId(runId: string): void {
  if (!RUN_DIR.test(runId)) throw new StepError('bad_run_id', `"${runId}" is not a run id`, false);
}

/** The workspaces of one worker. */
export class Workspaces {
  readonly options: WorkspaceOptions;
  #base: Promise<void> | undefined;

  constructor(options: Partial<WorkspaceOptions> = {}) {
    const merged = { baseDir: join(tmpdir(), 'conveyor-workspaces'), keep: false, ...options };
    // A relative setting would put workspaces under the engine's own directory.
    this.options = { ...merged, baseDir: resolve(merged.baseDir) };
  }

  /** The run's workspace, created on first use. */
  async forRun(runId: string): Promise<string> {
    const dir = await this.pathFor(runId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const owner = this.options.runAs;
    if (owner) await chown(dir, owner.uid, owner.gid);
    return dir;
  }

  /**
   * Where the run's workspace is, not created: `conveyor-launch --workspace` makes it (launcher.c),
   * `forRun` otherwise. The base directory is made (or checked) once.
   */
  async pathFor(runId: string): Promise<string> {
    checkRunId(runId);
    await this.#ensureBase();
    return join(this.options.baseDir, runId);
  }

  /** The base directory, created (or checked) once. */
  #ensureBase(): Promise<void> {
    this.#base ??= (async () => {
      const base = this.options.baseDir;
      const created = await mkdir(base, { recursive: true });
      if (created === undefined) {
        // An existing directory is not ours to re-mode: refuse one anybody may write to (`/tmp`).
        const found = await stat(base);
        if (found.mode & 0o002)
          throw new StepError(
            'bad_workspace_dir',
            `WORKER_WORKSPACE_DIR "${base}" is writable by everyone: give Conveyor a directory of its own`,
            false,
          );
      } else {
        // Steps may pass through to their own run's directory but not list the others.
        await chmod(base, 0o711);
      }
    })();
    return this.#base;
  }

  /**
   * Where a step with `cwd` runs: a relative `cwd` inside the workspace, never above it; an
   * absolute one as given (it must exist). `workspace`: the run's, when the caller just made it. The worker only checks the path as text: the step's
   * own init creates a relative one and enters it as the step's user (see containment.ts), so a
   * link a step planted in its workspace is followed with the step's rights, never the worker's.
   */
  async cwdFor(
    runId: string,
    cwd: string | undefined,
    workspace?: string,
  ): Promise<{ dir: string; create: boolean }> {
    workspace ??= await this.forRun(runId);
    if (cwd === undefined || cwd === '') return { dir: workspace, create: false };
    if (isAbsolute(cwd)) {
      const found = await stat(cwd).catch(() => undefined);
      if (!found?.isDirectory())
        throw new StepError('bad_cwd', `cwd "${cwd}" is not a directory on this worker`, false);
      return { dir: cwd, create: false };
    }
    const dir = resolve(workspace, cwd);
    const rel = relative(workspace, dir);
    if (rel.startsWith('..') || isAbsolute(rel)) {
      throw new StepError('bad_cwd', `cwd "${cwd}" leaves the run's workspace`, false);
    }
    return { dir, create: rel !== '' };
  }

  /**
   * A fresh directory for one attempt's `$CONVEYOR_OUTPUT` and `$CONVEYOR_EVENTS`, apart from the
   * workspace (`rm -rf *` there cannot touch it) and out of other runs' reach: under
   * `<base>/.attempts/<run>/`, neither of which anyone but root may list, with a random name.
   */
  async attemptDir(runId: string): Promise<string> {
    const dir = await this.attemptPath(runId);
    const parent = dirname(dir);
    // One round trip once the run's parent exists (every attempt but its first).
    await mkdir(dir, { mode: 0o700 }).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      await mkdir(parent, { recursive: true, mode: 0o711 });
      await mkdir(dir, { mode: 0o700 });
    });
    const owner = this.options.runAs;
    if (owner) await chown(dir, owner.uid, owner.gid);
    return dir;
  }

  /**
   * A fresh name for one attempt's directory (see `attemptDir`), not created:
   * `conveyor-launch --attempt-dir` makes it, with the same modes and owners.
   */
  async attemptPath(runId: string): Promise<string> {
    checkRunId(runId);
    await this.#ensureBase();
    return join(this.options.baseDir, ATTEMPTS, runId, randomBytes(16).toString('hex'));
  }

  /**
   * Removes a run's workspace (when the run ended), unless workspaces are kept, and always what
   * its attempts left behind (a worker killed mid-attempt leaves its outputs there).
   */
  async remove(runId: string): Promise<void> {
    if (!RUN_DIR.test(runId)) return;
    await rm(join(this.options.baseDir, ATTEMPTS, runId), { recursive: true, force: true });
    if (this.options.keep) return;
    await rm(join(this.options.baseDir, runId), { recursive: true, force: true });
  }

  /**
   * Removes the workspaces of ended runs, and of runs this worker's Redis does not know once
   * they are a week old: workers of other prefixes may share the directory, so an unknown run
   * may be someone else's live one.
   */
  async sweep(states: RunStates): Promise<string[]> {
    const names = [
      ...new Set([
        ...(await readdir(this.options.baseDir).catch(() => [] as string[])),
        ...(await readdir(join(this.options.baseDir, ATTEMPTS)).catch(() => [] as string[])),
      ]),
    ];
    const runIds = names.filter((n) => RUN_DIR.test(n));
    if (runIds.length === 0) return [];
    const known = await states(runIds);
    const old = Date.now() - UNKNOWN_RUN_MAX_AGE_MS;
    const removed: string[] = [];
    for (const [i, id] of runIds.entries()) {
      const state = known[i];
      const stale =
        state === 'unknown' &&
        ((await stat(join(this.options.baseDir, id)).catch(() => undefined))?.mtimeMs ?? 0) < old;
      if (state === 'ended' || stale) removed.push(id);
    }
    await Promise.all(removed.map((id) => this.remove(id)));
    return removed;
  }
}
