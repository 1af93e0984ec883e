/**
 * The one-exec launcher of local steps, `conveyor-launch` (launcher.c): the containment of
 * containment.ts in a single small static program instead of a chain of five, at about a third
 * of the chain's cost per launch (bench/spawn.ts (d)). A build (infra/build.mjs) compiles it
 * beside this module when a C compiler is at hand; a run from the sources compiles it once into
 * a cache directory only the worker's user can write to. Without either, steps go through the
 * chain, as they do with `WORKER_LAUNCHER=chain`.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, copyFile, lstat, mkdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findExecutable } from '../executables.ts';
import type { ContainmentMode, RunAs } from './containment.ts';

/** `WORKER_LAUNCHER`: the launcher when one is found (`auto`), or always the chain. */
export type LauncherSetting = 'auto' | 'chain';

/** The file name of the compiled launcher. */
export const LAUNCHER_NAME = 'conveyor-launch';

/** Flags of the compile, tried in order (static first: no loader, no libc to map); as in infra/build.mjs. */
const COMPILES = [
  ['-std=c99', '-O2', '-static'],
  ['-std=c99', '-O2'],
];

const BUILT = fileURLToPath(new URL(`./${LAUNCHER_NAME}`, import.meta.url));
const SOURCE = fileURLToPath(new URL('./launcher.c', import.meta.url));
const execFileAsync = promisify(execFile);

/** Where to look for the launcher and what to compile it with. */
export interface FindLauncherOptions {
  /** The private cache for a launcher compiled from the sources. @defaultValue `$XDG_CACHE_HOME/conveyor`, else `~/.cache/conveyor` */
  cacheDir: string;
  /** Where to find `cc`. @defaultValue the worker's PATH */
  path?: string;
}

/**
 * The launcher's absolute path: the one a build put beside this module, else one compiled from
 * `launcher.c` into the private cache (once per version of the source); undefined when neither
 * can be had (no compiler, a cache directory others could write to), so that the chain is used.
 */
export async function findLauncher(options: Partial<FindLauncherOptions> = {}): Promise<string | undefined> {
  if (await executable(BUILT)) return BUILT;
  const source = await readFile(SOURCE).catch(() => undefined);
  if (source === undefined) return undefined;
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  return compiled(source, cacheDir, options.path).catch(() => undefined);
}

/** `$XDG_CACHE_HOME/conveyor` when that is absolute (the XDG rule), else `~/.cache/conveyor`. */
function defaultCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'conveyor');
}

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * The launcher compiled from `source` in `cacheDir`, named by the source's hash: reused when a
 * process compiled it before, else compiled under a temporary name and renamed into place (two
 * workers compiling at once each rename a whole file).
 */
async function compiled(source: Buffer, cacheDir: string, path?: string): Promise<string> {
  const dir = await privateDir(cacheDir);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const target = join(dir, `${LAUNCHER_NAME}-${hash}`);
  if (await ours(target)) return target;
  const cc = await findExecutable('cc', path);
  const temp = join(dir, `.${LAUNCHER_NAME}-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    // Compile the bytes that were hashed, not a file that may change meanwhile.
    await copyFile(SOURCE, `${temp}.c`);
    if (!(await readFile(`${temp}.c`)).equals(source)) throw new Error('launcher.c changed while compiling');
    await compile(cc, `${temp}.c`, temp, path);
    await rename(temp, target);
    return target;
  } finally {
    await Promise.all([rm(temp, { force: true }), rm(`${temp}.c`, { force: true })]);
  }
}

/** Compiles `source` to `out` with the first set of flags that works. */
async function compile(cc: string, source: string, out: string, path?: string): Promise<void> {
  let failure: unknown;
  for (const flags of COMPILES) {
    try {
      await execFileAsync(cc, [...flags, '-o', out, source], {
        env: { PATH: path ?? process.env.PATH ?? dirname(cc) },
      });
      return;
    } catch (err) {
      failure = err;
    }
  }
  throw new Error(`cc could not compile ${source}`, { cause: failure });
}

/**
 * `dir`, created 0700 if missing, and checked: a real directory of the worker's user that nobody
 * else can write to, under parents only root or that user can change (or sticky ones, as /tmp).
 * Throws otherwise: a launcher from a directory someone else could write to could be theirs.
 */
async function privateDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const real = await realpath(dir);
  const uid = process.geteuid?.() ?? -1;
  const info = await lstat(real);
  if (!info.isDirectory() || info.uid !== uid || (info.mode & 0o077) !== 0)
    throw new Error(`${real} must be a directory of uid ${uid} with mode 0700`);
  for (let parent = dirname(real); ; parent = dirname(parent)) {
    const p = await lstat(parent);
    // Sticky (0o1000, as /tmp): others may write there but not move or remove our entries.
    const shared = (p.mode & 0o022) !== 0 && (p.mode & 0o1000) === 0;
    if ((p.uid !== 0 && p.uid !== uid) || shared)
      throw new Error(`${parent} (above the launcher cache) may be changed by another user`);
    if (parent === dirname(parent)) return real;
  }
}

/** Whether `path` is a regular file of ours that only we can write (else it is not used, nor replaced). */
async function ours(path: string): Promise<boolean> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return false;
  if (!info.isFile() || info.uid !== process.geteuid?.() || (info.mode & 0o022) !== 0)
    throw new Error(`${path} is not a file only this user can write`);
  return true;
}

/** The groups a launcher switches to: none for a bare uid, the user's (resolved at start) otherwise. */
export type RunAsWithGroups = RunAs & { groups: number[] };

/** What a launch through `conveyor-launch` does besides running the command. */
export interface LaunchOptions {
  /** Run as this user, with these groups. */
  runAs?: RunAsWithGroups;
  /** The pid of the process that starts it: the launcher exits if that one died before the parent-death signal was armed. */
  parent?: number;
  /** The run's workspace, which the launcher creates if missing and enters (`--workspace`). */
  workspace?: string;
  /** The attempt's private directory, which the launcher creates afresh with empty `output` and `events` (`--attempt-dir`). */
  attemptDir?: string;
  /** A descriptor on which the launcher reports the two files' sizes once the step is gone (`--report-fd`, with `attemptDir`; namespace modes only). */
  reportFd?: number;
}

/** What a launcher's report (`--report-fd`) says of the attempt's files. */
export interface FilesReport {
  /** Both are empty regular files: nothing to read. */
  empty: boolean;
  /** The launcher removed them and their directory: nothing to remove either. */
  removed: boolean;
}

/**
 * Reads a launcher's report, "<output size> <events size>[ removed]\n" (-1 for anything but a
 * regular file); anything else, or none (a launcher killed first), says nothing.
 */
export function parseFilesReport(report: string | undefined): FilesReport {
  if (report === '0 0 removed\n') return { empty: true, removed: true };
  return { empty: report === '0 0\n', removed: false };
}

/** The argv that runs `shell -c command` contained by `mode` through the launcher. */
export function launcherArgv(
  launcher: string,
  mode: ContainmentMode,
  shell: string,
  command: string,
  options: LaunchOptions = {},
): string[] {
  const { runAs, parent, workspace, attemptDir, reportFd } = options;
  const user = runAs
    ? [
        '--uid',
        String(runAs.uid),
        '--gid',
        String(runAs.gid),
        ...(runAs.groups.length ? ['--groups', runAs.groups.join(',')] : ['--clear-groups']),
      ]
    : [];
  const from = parent === undefined ? [] : ['--parent', String(parent)];
  const places = [
    ...(workspace === undefined ? [] : ['--workspace', workspace]),
    ...(attemptDir === undefined ? [] : ['--attempt-dir', attemptDir]),
    ...(reportFd === undefined ? [] : ['--report-fd', String(reportFd)]),
  ];
  return [launcher, '--mode', mode, ...from, ...user, ...places, '--', shell, '-c', command];
}
