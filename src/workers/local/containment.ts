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
 */
import { spawn } from 'node:child_process';

/** How steps are contained on this machine. */
export type ContainmentMode = 'pid-namespace' | 'user-namespace' | 'process-group';

/** A user steps run as (`WORKER_RUN_AS`). */
export interface RunAs {
  /** The user's name, or '' for a bare uid that has no passwd entry (no supplementary groups). */
  user: string;
  uid: number;
  gid: number;
}

/**
 * The namespace's init: runs "$@", turns TERM/INT/HUP into TERM for every process of the
 * namespace, and returns the command's exit status (`wait` returns early when a trap fires).
 */
const INIT =
  '"$@" & c=$!; trap "kill -TERM -1 2>/dev/null" TERM INT HUP; ' +
  'while :; do wait $c; s=$?; kill -0 $c 2>/dev/null || exit $s; done';

const PREFIX: Record<ContainmentMode, string[]> = {
  'pid-namespace': [
    'setpriv',
    '--pdeathsig',
    'KILL',
    '--',
    'unshare',
    '--pid',
    '--fork',
    '--mount-proc',
    '--kill-child=KILL',
    '--',
  ],
  'user-namespace': [
    'setpriv',
    '--pdeathsig',
    'KILL',
    '--',
    'unshare',
    '--user',
    '--map-current-user',
    '--pid',
    '--fork',
    '--mount-proc',
    '--kill-child=KILL',
    '--',
  ],
  'process-group': ['setpriv', '--pdeathsig', 'KILL', '--'],
};

/**
 * The argv that runs `shell -c command` contained by `mode`, as `runAs` when given (the user
 * switch happens inside the namespace, after it is made, and sets the parent-death signal again
 * because a change of user clears it).
 */
export function containedArgv(
  mode: ContainmentMode,
  shell: string,
  command: string,
  runAs?: RunAs,
): string[] {
  const user = runAs
    ? [
        'setpriv',
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
  if (mode === 'process-group') return [...PREFIX[mode], ...user, shell, '-c', command];
  return [...PREFIX[mode], ...user, '/bin/sh', '-c', INIT, 'conveyor-step', shell, '-c', command];
}

function succeeds(argv: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

/** The strongest containment this machine allows, found by trying each form once. */
export async function probeContainment(): Promise<ContainmentMode> {
  for (const mode of ['pid-namespace', 'user-namespace'] as const) {
    if (await succeeds(containedArgv(mode, '/bin/sh', 'exit 0'))) return mode;
  }
  if (await succeeds(containedArgv('process-group', '/bin/sh', 'exit 0'))) return 'process-group';
  throw new Error('local steps need setpriv from util-linux (apt-get install util-linux)');
}
