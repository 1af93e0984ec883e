/**
 * How a step's `vm` limits become V8 flags and rlimits. A VM's `memoryMb` is its whole memory,
 * as for a microVM: the V8 heap gets most of it and the runtime (code, buffers, stacks, the
 * private /tmp) the rest. The cgroup enforces the total; the heap flags make the common case —
 * a JavaScript heap growing without end — fail early with V8's clear "heap out of memory".
 */
import type { VmStepOptions } from './step-options.ts';

const MiB = 2 ** 20;
/** RLIMIT_DATA also counts what Node.js maps at start (~70 MiB), so the fallback adds room. */
const DATA_RESERVE_MB = 64;

/** V8 flags that keep the heap inside `memoryMb`. */
export function heapFlags(memoryMb: number): string[] {
  const reserve = Math.max(16, Math.floor(memoryMb / 4));
  const semiSpace = Math.min(16, Math.max(1, Math.floor(memoryMb / 64)));
  return [`--max-old-space-size=${memoryMb - reserve}`, `--max-semi-space-size=${semiSpace}`];
}

/** What decides the rlimits besides the step's options. */
export interface RlimitContext {
  /** A cgroup fences memory and pids: the rlimits need not. */
  cgroup: boolean;
  /** The VM has a uid of its own, so RLIMIT_NPROC counts exactly its processes. */
  ownUid: boolean;
  maxFileMb: number;
}

/** `prlimit` arguments (before its `--`) for one VM. */
export function rlimitArgs(options: VmStepOptions, ctx: RlimitContext): string[] {
  const cpu = options.cpuSeconds;
  const args = [
    // SIGXCPU at the limit, SIGKILL a second later if the guest ignores it.
    `--cpu=${cpu}:${cpu + 1}`,
    // A V8 abort must not write a core dump of the guest's memory to disk.
    '--core=0',
    `--fsize=${ctx.maxFileMb * MiB}`,
    '--nofile=4096:4096',
  ];
  if (!ctx.cgroup) {
    args.push(`--data=${(options.memoryMb + DATA_RESERVE_MB) * MiB}`);
    if (ctx.ownUid) args.push(`--nproc=${options.pids}`);
  }
  return args;
}

/** The step-log lines that say which fences an rlimit fallback leaves weaker. */
export function fallbackNotes(ctx: RlimitContext, reason: string): string[] {
  if (ctx.cgroup) return [];
  const pids = ctx.ownUid ? 'RLIMIT_NPROC' : 'nothing (no uid of its own)';
  return [
    `cgroups unavailable (${reason}): limits fall back to rlimits — memory per process by RLIMIT_DATA, ` +
      `processes by ${pids}, CPU time per process by RLIMIT_CPU, no CPU bandwidth cap`,
  ];
}

/** Bytes of the VM's total memory. */
export function memoryBytes(options: VmStepOptions): number {
  return options.memoryMb * MiB;
}
