/**
 * What this host offers the process driver, found out once per driver by trying it for real:
 * whether bubblewrap starts a sandbox (as the uid guests will have), whether a cgroup hierarchy
 * is writable, and whether `prlimit` exists.
 */
import { spawn } from 'node:child_process';
import { CgroupManager } from './cgroup.ts';
import type { ProcessDriverOptions } from './options.ts';
import { bwrapArgs, systemView } from './sandbox.ts';

/** The probe results. */
export interface HostFacts {
  /** `null` when the sandbox works; otherwise why not. */
  sandboxUnavailable: string | null;
  cgroups: CgroupManager | null;
  /** Why there are no cgroups, for the step log. */
  cgroupReason: string;
  /** `null` when prlimit runs; otherwise why not. */
  prlimitUnavailable: string | null;
  /** bwrap arguments for the read-only system view. */
  system: string[];
  /** The worker is root: guests get uids of their own. */
  root: boolean;
}

/** Probes the host. `probeDir` must be a directory the probe uid can use. */
export async function probeHost(
  options: ProcessDriverOptions,
  probe: { dir: string; uid: number | null },
): Promise<HostFacts> {
  const root = process.getuid?.() === 0;
  const [cgroups, system, prlimitUnavailable] = await Promise.all([
    options.cgroups === 'off' ? 'switched off by the worker' : CgroupManager.detect(options.cgroupRoot),
    systemView(options.nodePath),
    run(options.prlimitPath, ['--version'], null).then((r) =>
      r.ok ? null : `prlimit does not run: ${r.why}`,
    ),
  ]);
  const args = bwrapArgs(system, { dir: probe.dir, readOnly: [], network: false, tmpBytes: 2 ** 20 });
  const sandbox = await run(options.bwrapPath, [...args, 'true'], probe.uid);
  return {
    sandboxUnavailable: sandbox.ok
      ? null
      : `bubblewrap (${options.bwrapPath}) cannot start a sandbox here: ${sandbox.why}`,
    cgroups: typeof cgroups === 'string' ? null : cgroups,
    cgroupReason: typeof cgroups === 'string' ? cgroups : '',
    prlimitUnavailable,
    system,
    root,
  };
}

async function run(file: string, args: string[], uid: number | null): Promise<{ ok: boolean; why: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(uid === null ? {} : { uid, gid: uid }),
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 2000) stderr += chunk;
    });
    child.on('error', (err) => resolve({ ok: false, why: err.message }));
    child.on('close', (code, signal) =>
      resolve(
        code === 0 ? { ok: true, why: '' } : { ok: false, why: stderr.trim() || `exit ${code ?? signal}` },
      ),
    );
  });
}
