/**
 * The bubblewrap fence: which namespaces a VM gets and what file system it sees. The view is
 * built from nothing (bwrap's empty root) rather than by hiding parts of the host, so anything
 * not listed here simply does not exist inside: no /home, /root, /var, /run, the worker's
 * code, other VMs' directories or the host's /tmp.
 */
import { lstat, readlink, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Host paths shown read-only inside, when they exist (symlinks are recreated as symlinks). */
const SYSTEM_PATHS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc'];

/** What one VM's sandbox mounts besides the system view. */
export interface SandboxMounts {
  /** The VM's private directory: writable, mounted at the same path. */
  dir: string;
  /** Extra read-only paths at the same place (the guest runner, allowed modules). */
  readOnly: string[];
  /** Share the host's network namespace instead of an empty one. */
  network: boolean;
  /** Size of the private /tmp (a tmpfs, charged to the VM's memory cgroup). */
  tmpBytes: number;
}

/** bwrap arguments for the read-only system view; computed once per driver. */
export async function systemView(nodePath: string): Promise<string[]> {
  const args: string[] = [];
  const shown: string[] = [];
  for (const path of SYSTEM_PATHS) {
    const stat = await lstat(path).catch(() => null);
    if (!stat) continue;
    if (stat.isSymbolicLink()) {
      args.push('--symlink', await readlink(path), path);
    } else if (stat.isDirectory()) {
      args.push('--ro-bind', path, path);
      shown.push(path);
    }
  }
  // A Node.js installed outside the system directories (nvm, /opt) needs its prefix shown too.
  const node = await realpath(nodePath);
  if (!shown.some((p) => node.startsWith(`${p}/`))) {
    const prefix = dirname(dirname(node));
    args.push('--ro-bind', prefix, prefix);
  }
  return args;
}

/** The full bwrap argument list, up to and including `--`. */
export function bwrapArgs(system: readonly string[], m: SandboxMounts): string[] {
  const args = [
    '--unshare-user',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    ...(m.network ? [] : ['--unshare-net']),
    // No nested user namespaces: they would hand the guest a fresh set of capabilities to probe
    // the kernel with.
    '--disable-userns',
    '--die-with-parent',
    // A new session: no TIOCSTI into a terminal the worker may hold.
    '--new-session',
    '--cap-drop',
    'ALL',
    '--hostname',
    'conveyor-vm',
    ...system,
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--size',
    String(m.tmpBytes),
    '--tmpfs',
    '/tmp',
    '--bind',
    m.dir,
    m.dir,
  ];
  for (const path of m.readOnly) args.push('--ro-bind', path, path);
  // Where /etc/resolv.conf points into /run (systemd-resolved), name resolution needs it.
  if (m.network) args.push('--ro-bind-try', '/run/systemd/resolve', '/run/systemd/resolve');
  // bwrap's root is a writable tmpfs; after the mounts are placed it becomes read-only.
  args.push('--remount-ro', '/', '--chdir', m.dir, '--');
  return args;
}
