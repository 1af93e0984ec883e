/**
 * How a local step's processes are kept on a leash, so that none outlives its step or its
 * worker, whatever it does (`setsid`, double forks, a background job holding stdout).
 *
 * The strong form is a PID namespace per attempt (`unshare --pid --fork`), entered through
 * `setpriv --pdeathsig KILL`: when the worker dies, even by SIGKILL, the kernel kills the
 * launcher, the launcher's `--kill-child` kills the namespace's init, and the death of a PID
 * namespace's init kills every process inside it. The init is a few lines of `sh` that runs the
 * step's command, forwards SIGTERM to every process of the namespace (`kill -TERM -1`) and exits
 * with the command's status, which again tears the namespace down: leftovers never linger. The
 * namespace gets its own /proc, so a step sees only its own processes (not the worker's, nor
 * their environments), and `$$` is a pid inside the namespace.
 *
 * Without the privilege to make a PID namespace (a non-root worker where user namespaces are
 * off, as in Docker's default seccomp profile), the fallback is a process group plus the
 * parent-death signal: processes that leave the group with `setsid` can then survive. The worker
 * logs which form it uses at start.
 *
 * The same guarantees come in one exec from `conveyor-launch` (launcher.c, launcher.ts) when it
 * is at hand; the chain of tools built here is its fallback. Each is probed as it is used.
 */
import { spawn } from 'node:child_process';
import { findExecutable, LOADER_VARIABLES } from '../executables.ts';
import { launcherArgv } from './launcher.ts';

/** How steps are contained on this machine. */
export type ContainmentMode = 'pid-namespace' | 'user-namespace' | 'process-group';

/** A user steps run as (`WORKER_RUN_AS`). */
export interface RunAs {
  /** The user's name, or '' for a bare uid that has no passwd entry (no supplementary groups). */
  user: string;
  uid: number;
  gid: number;
}

/** Restores the renamed loader variables (names checked in `launchEnv`). */
const RESTORE = String.raw`for v in $CONVEYOR_RESTORE; do eval "export $v=\"\$CONVEYOR_RESTORE_$v\""; unset "CONVEYOR_RESTORE_$v"; done; unset CONVEYOR_RESTORE; `;

/**
 * Creates and enters a relative `cwd` (`CONVEYOR_CREATE_CWD`) as the step's user, after the user
 * switch: links a step planted in its workspace are followed with the step's rights.
 */
const ENTER = `if [ -n "$CONVEYOR_CREATE_CWD" ]; then mkdir -p -- "$CONVEYOR_CREATE_CWD" && cd -- "$CONVEYOR_CREATE_CWD" || exit 125; fi; unset CONVEYOR_CREATE_CWD; `;

/** The launcher's environment for a step's `env`: loader variables renamed for the init to restore. */
export function launchEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const carried: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (LOADER_VARIABLES.test(name)) {
      out[`CONVEYOR_RESTORE_${name}`] = value;
      carried.push(name);
    } else out[name] = value;
  }
  if (carried.length) out.CONVEYOR_RESTORE = carried.join(' ');
  return out;
}

/** Absolute paths of the tools that launch a step: never looked up on the step's own `PATH`. */
export interface LaunchTools {
  setpriv: string;
  unshare: string;
  env: string;
  sh: string;
}

/**
 * The namespace's init: restores the loader variables, runs "$@" with SIGINT and SIGQUIT back to
 * their defaults (a shell starts a background job with them ignored), turns TERM/INT/HUP into
 * TERM for every process of the namespace, and returns the command's exit status (`wait` returns
 * early when a trap fires).
 */
function init(tools: LaunchTools): string {
  return (
    `${RESTORE}${ENTER}${tools.env} --default-signal=INT,QUIT "$@" & c=$!; ` +
    'trap "kill -TERM -1 2>/dev/null" TERM INT HUP; ' +
    'while :; do wait $c; s=$?; kill -0 $c 2>/dev/null || exit $s; done'
  );
}

function prefix(mode: ContainmentMode, t: LaunchTools): string[] {
  const death = [t.setpriv, '--pdeathsig', 'KILL', '--'];
  if (mode === 'process-group') return death;
  const user = mode === 'user-namespace' ? ['--user', '--map-current-user'] : [];
  return [...death, t.unshare, ...user, '--pid', '--fork', '--mount-proc', '--kill-child=KILL', '--'];
}

/**
 * The argv that runs `shell -c command` contained by `mode`, as `runAs` when given (the user
 * switch happens inside the namespace, after it is made, and sets the parent-death signal again
 * because a change of user clears it). `env` is the launcher's environment (`launchEnv`): in the
 * process-group form, when it carries no loader variable to restore and no directory to create,
 * the `sh` that would only `exec "$@"` is left out (one exec fewer per step).
 */
export function containedArgv(
  mode: ContainmentMode,
  tools: LaunchTools,
  shell: string,
  command: string,
  runAs?: RunAs,
  env?: Record<string, string>,
): string[] {
  const user = runAs
    ? [
        tools.setpriv,
        '--reuid',
        String(runAs.uid),
        '--regid',
        String(runAs.gid),
        runAs.user ? '--init-groups' : '--clear-groups',
        '--pdeathsig',
        'KILL',
        '--',
      ]
    : [];
  if (mode === 'process-group') {
    if (env && env.CONVEYOR_RESTORE === undefined && env.CONVEYOR_CREATE_CWD === undefined)
      return [...prefix(mode, tools), ...user, shell, '-c', command];
    return [
      ...prefix(mode, tools),
      ...user,
      tools.sh,
      '-c',
      `${RESTORE}${ENTER}exec "$@"`,
      'conveyor-step',
      shell,
      '-c',
      command,
    ];
  }
  return [
    ...prefix(mode, tools),
    ...user,
    tools.sh,
    '-c',
    init(tools),
    'conveyor-step',
    shell,
    '-c',
    command,
  ];
}

/** Finds each launch tool on the worker's own PATH. */
export async function findLaunchTools(path?: string): Promise<LaunchTools> {
  const [setpriv, unshare, env, sh] = await Promise.all(
    ['setpriv', 'unshare', 'env', 'sh'].map((name) =>
      findExecutable(name, path).catch(() => {
        throw new Error(`local steps need ${name} on the worker's PATH (util-linux, coreutils)`);
      }),
    ),
  );
  return { setpriv: setpriv!, unshare: unshare!, env: env!, sh: sh! };
}

function succeeds(argv: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', env: { PATH: '/usr/bin:/bin' } });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

const MODES = ['pid-namespace', 'user-namespace', 'process-group'] as const;

/** The strongest mode in which `argvFor(mode)` runs `exit 0`, if any. */
async function strongest(argvFor: (mode: ContainmentMode) => string[]): Promise<ContainmentMode | undefined> {
  for (const mode of MODES) if (await succeeds(argvFor(mode))) return mode;
  return undefined;
}

/** How steps are launched: the mode, and the launcher when it is used (else the chain). */
export interface Containment {
  mode: ContainmentMode;
  launcher?: string;
}

/**
 * The strongest containment this machine allows, found by trying each form once: through
 * `launcher` when given (the chain only if the launcher does worse, say a security profile that
 * refuses it a namespace), else through the chain.
 */
export async function probeContainment(tools: LaunchTools, launcher?: string): Promise<Containment> {
  const viaLauncher = launcher
    ? await strongest((mode) => launcherArgv(launcher, mode, tools.sh, 'exit 0'))
    : undefined;
  if (viaLauncher === 'pid-namespace') return { mode: viaLauncher, launcher };
  const viaChain = await strongest((mode) => containedArgv(mode, tools, tools.sh, 'exit 0'));
  if (viaLauncher && (!viaChain || MODES.indexOf(viaLauncher) <= MODES.indexOf(viaChain)))
    return { mode: viaLauncher, launcher };
  if (viaChain) return { mode: viaChain };
  throw new Error(
    'local steps could not be started: setpriv (util-linux) and env --default-signal (coreutils ≥ 8.31) are needed',
  );
}
