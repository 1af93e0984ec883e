/**
 * A VM of the process driver: one spawned process tree (a Node.js runtime or `sh -c`, possibly
 * inside bubblewrap) with its private directory, cgroup and uid. Killing means the whole tree:
 * the process group, everything in the cgroup, and — in the sandbox — the PID namespace, which
 * the kernel empties when its first process dies.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { readPrivateFile, writePrivateFile } from '../private-file.ts';
import type { CgroupStats, VmCgroup } from './cgroup.ts';
import type { GuestChannel } from './channel.ts';
import type { Vm, VmExit, VmFile, VmSpec } from './driver.ts';

/** File names inside the private directory. */
export const FILE_NAMES: Record<VmFile, string> = {
  function: 'function.mjs',
  output: 'conveyor-output',
  events: 'conveyor-events',
};

/** How long output may keep flowing after the main process exits (a leftover holding the pipe). */
const DRAIN_MS = 250;

/** Everything a process VM holds, handed over by the driver. */
export interface ProcessVmParts {
  id: string;
  spec: VmSpec;
  sandboxed: boolean;
  child: ChildProcess;
  channel: GuestChannel | null;
  notes: string[];
  guestEnv: Record<string, string>;
  dir: string;
  cgroup: VmCgroup | null;
  /** Kills every process of the VM's own uid (when it has one): the fallback without cgroups. */
  killByUid: (() => Promise<void>) | null;
  /** Gives back the directory, uid and the driver's bookkeeping. */
  release: () => Promise<void>;
}

/** One running process VM. */
export class ProcessVm implements Vm {
  readonly id: string;
  readonly spec: VmSpec;
  readonly sandboxed: boolean;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly channel: GuestChannel | null;
  readonly notes: readonly string[];
  readonly guestEnv: Readonly<Record<string, string>>;
  readonly exited: Promise<VmExit>;
  #parts: ProcessVmParts;
  #disposed: Promise<void> | null = null;

  constructor(parts: ProcessVmParts) {
    this.#parts = parts;
    this.id = parts.id;
    this.spec = parts.spec;
    this.sandboxed = parts.sandboxed;
    this.stdout = parts.child.stdout!;
    this.stderr = parts.child.stderr!;
    this.channel = parts.channel;
    this.notes = parts.notes;
    this.guestEnv = parts.guestEnv;
    this.exited = this.#watch();
  }

  async #watch(): Promise<VmExit> {
    const { child, cgroup } = this.#parts;
    // 'close' (every stdio stream ended) may come before or after 'exit': listen from the start.
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve([child.exitCode, child.signalCode]);
      child.once('exit', (c, s) => resolve([c, s]));
      // Spawning itself failed (no such binary): there will be no 'exit'.
      child.once('error', () => {
        if (child.pid === undefined) resolve([null, null]);
      });
    });
    // The VM ends with its main process: whatever it left running goes too.
    await this.#killTree();
    let timer: NodeJS.Timeout | undefined;
    const drained = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), DRAIN_MS);
    });
    if (!(await Promise.race([closed.then(() => true), drained]))) {
      child.stdout?.destroy();
      child.stderr?.destroy();
    }
    clearTimeout(timer);
    const stats: CgroupStats = (await cgroup?.stats()) ?? {
      oomKills: 0,
      cpuSeconds: undefined,
      pidsLimitHits: 0,
    };
    return {
      code,
      signal,
      oomKilled: stats.oomKills > 0,
      pidsLimitHit: stats.pidsLimitHits > 0,
      ...(stats.cpuSeconds === undefined ? {} : { cpuSeconds: stats.cpuSeconds }),
    };
  }

  writeFile(file: VmFile, data: string): Promise<void> {
    return writePrivateFile(join(this.#parts.dir, FILE_NAMES[file]), data);
  }

  readFile(file: VmFile, maxBytes: number): Promise<string | null> {
    const label = file === 'output' ? '$CONVEYOR_OUTPUT' : file === 'events' ? '$CONVEYOR_EVENTS' : file;
    return readPrivateFile(join(this.#parts.dir, FILE_NAMES[file]), maxBytes, label);
  }

  kill(): void {
    void this.#killTree();
  }

  async #killTree(): Promise<void> {
    const { child, cgroup, killByUid } = this.#parts;
    if (child.pid !== undefined) {
      try {
        // The group: the outermost process and, outside the sandbox, the children it forked.
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await cgroup?.killAll().catch(() => {});
    if (!cgroup && !this.sandboxed) await killByUid?.().catch(() => {});
  }

  dispose(): Promise<void> {
    this.#disposed ??= (async () => {
      this.kill();
      await this.exited;
      this.#parts.channel?.close();
      await this.#parts.cgroup?.remove().catch(() => {});
      await this.#parts.release();
    })();
    return this.#disposed;
  }
}
