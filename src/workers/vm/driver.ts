/**
 * The driver seam: the executor asks a driver for a fresh, isolated VM and talks to it only
 * through this interface. The process driver (a Node.js process, optionally inside bubblewrap)
 * is one implementation; a microVM driver (Firecracker or QEMU where /dev/kvm exists) can be
 * another without the executor or the engine changing.
 */
import type { Readable } from 'node:stream';
import type { GuestChannel } from './channel.ts';
import type { VmStepOptions } from './step-options.ts';

/** The PATH a guest gets unless its step sets one. */
export const GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What to start. */
export interface VmSpec {
  /** `function`: a runtime waiting for a module on its channel; `command`: `sh -c command`. */
  kind: 'function' | 'command';
  /** The shell command (kind `command`). */
  command?: string;
  /** The guest's environment. Function VMs get the step's own env later, over the channel. */
  env: Record<string, string>;
  options: VmStepOptions;
}

/** Private files a VM exchanges with the worker (the driver decides where they live). */
export type VmFile = 'function' | 'output' | 'events';

/** How a VM ended, with what its fences observed. */
export interface VmExit {
  /** Exit status as the worker saw it (a sandbox reports a signalled guest as 128 + signal). */
  code: number | null;
  /** Signal that ended the outermost process, when one did. */
  signal: NodeJS.Signals | null;
  /** The kernel's OOM killer ended a process of this VM (cgroup memory limit). */
  oomKilled: boolean;
  /** CPU seconds the VM used, when a cgroup measured them. */
  cpuSeconds?: number;
  /** A fork was refused by the pids limit. */
  pidsLimitHit: boolean;
}

/** One running VM. It serves one step; `dispose()` destroys it for good. */
export interface Vm {
  readonly id: string;
  readonly spec: VmSpec;
  /** Whether the sandbox fences this VM (decides how exit codes read). */
  readonly sandboxed: boolean;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** The function runtime's message channel; `null` for commands. */
  readonly channel: GuestChannel | null;
  /** Lines for the step's log about how this VM is fenced (fallbacks, missing fences). */
  readonly notes: readonly string[];
  /** Environment values the guest sees for the private files (`CONVEYOR_OUTPUT`, `HOME`…). */
  readonly guestEnv: Readonly<Record<string, string>>;
  /** Settles once the whole VM is gone and its output streams have ended. Never rejects. */
  readonly exited: Promise<VmExit>;
  /** Writes a private file before the guest needs it (e.g. the function module). */
  writeFile(file: VmFile, data: string): Promise<void>;
  /** Reads a private file the guest wrote; `null` when absent. Throws past `maxBytes`. */
  readFile(file: VmFile, maxBytes: number): Promise<string | null>;
  /** Kills every process of the VM now. Idempotent. */
  kill(): void;
  /** Kills, waits for the end, and removes everything the VM held (directory, cgroup). */
  dispose(): Promise<void>;
}

/** What a driver can fence on this host, found out once. */
export interface DriverCapabilities {
  /** `null` when steps may be sandboxed, otherwise why not. */
  sandboxUnavailable: string | null;
}

/** Starts fresh isolated VMs. */
export interface VmDriver {
  readonly name: string;
  /** Probes the host (memoized). */
  capabilities(): Promise<DriverCapabilities>;
  /** Starts a VM; resolves once it is ready (a function runtime has said `ready`). */
  start(spec: VmSpec): Promise<Vm>;
  /**
   * Makes later starts of `spec` cheaper where the driver can (the process driver builds its
   * runner snapshot for that heap size). Never rejects; starts work without it.
   */
  prepare?(spec: VmSpec): Promise<void>;
  /** Releases what the driver holds (its cgroup and directory roots). VMs are disposed first. */
  close(): Promise<void>;
}
