/**
 * The process driver: a VM is a fresh process tree started as
 *
 *   [sh gate] → prlimit → [bwrap] → node [--snapshot-blob] guest-runner.cjs | sh -c command
 *
 * all of it already running as the VM's own unprivileged uid (when the worker is root), so no
 * binary ever runs privileged with the guest's environment. The gate holds the tree still until
 * the worker has moved it into its cgroup, so not one instruction of the guest runs unfenced.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { isAbsolute, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { StepError } from '../../errors.ts';
import { findExecutable, LOADER_VARIABLES } from '../executables.ts';
import type { VmCgroup } from './cgroup.ts';
import { GuestChannel } from './channel.ts';
import { type DriverCapabilities, GUEST_PATH, type Vm, type VmDriver, type VmSpec } from './driver.ts';
import { type HostFacts, probeHost } from './host-facts.ts';
import { fallbackNotes, heapFlags, memoryBytes, rlimitArgs } from './limits.ts';
import { ModuleResolver, type ResolvedModules } from './modules.ts';
import { defaultDriverOptions, type ProcessDriverOptions } from './options.ts';
import { PrivateDirs } from './private-dir.ts';
import { FILE_NAMES, ProcessVm } from './process-vm.ts';
import { bwrapArgs } from './sandbox.ts';
import { RunnerSnapshots } from './snapshot.ts';

/** A guest message may not exceed this (outputs are capped far below it by the executor). */
export const MAX_MESSAGE_BYTES = 8 * 2 ** 20;
const READY_TIMEOUT_MS = 15_000;
/** Exit status of the gate when the worker never said go. */
const GATE = 'read -r go && [ "$go" = go ] || exit 125; exec "$@"';
const NO_MODULES: ResolvedModules = { links: [], readable: [] };

/** Starts runtime VMs as local process trees. */
export class ProcessVmDriver implements VmDriver {
  readonly name = 'process';
  readonly #options: ProcessDriverOptions;
  #toolPaths: Promise<{ setpriv: string; unshare: string; prlimit: string; bwrap: string }> | undefined;
  readonly #dirs: PrivateDirs;
  readonly #modules: ModuleResolver;
  readonly #runner = fileURLToPath(new URL('./guest-runner.cjs', import.meta.url));
  readonly #uids = new Set<number>();
  readonly #live = new Set<Vm>();
  readonly #snapshots: RunnerSnapshots | null;
  #facts: Promise<HostFacts> | null = null;
  #seq = 0;

  constructor(options: Partial<ProcessDriverOptions> = {}) {
    this.#options = { ...defaultDriverOptions(), ...options };
    this.#dirs = new PrivateDirs(this.#options.tmpDir);
    this.#modules = new ModuleResolver(this.#options.moduleRoot);
    const dirs = this.#dirs;
    this.#snapshots = this.#options.snapshot
      ? new RunnerSnapshots(
          this.#options.nodePath,
          this.#runner,
          async () => join(await dirs.base(), 'snapshots'),
          async () => (await this.#tools()).setpriv,
        )
      : null;
  }

  async prepare(spec: VmSpec): Promise<void> {
    if (spec.kind !== 'function' || !this.#snapshots) return;
    this.#snapshots.lookup(heapFlags(spec.options.memoryMb));
    await this.#snapshots.settled();
  }

  /** What the runner's snapshots are doing, by V8 flag set (`building`, `ready`, `failed: …`). */
  snapshotStates(): Record<string, string> {
    return this.#snapshots?.states() ?? {};
  }

  async capabilities(): Promise<DriverCapabilities> {
    const facts = await this.#probe();
    return { sandboxUnavailable: facts.sandboxUnavailable };
  }

  /**
   * The launch tools' absolute paths, found on the worker's own PATH: a guest's PATH (its env)
   * must never pick the `prlimit` or `bwrap` that fences it.
   */
  #tools(): Promise<{ setpriv: string; unshare: string; prlimit: string; bwrap: string }> {
    const absolute = (path: string) =>
      isAbsolute(path) ? Promise.resolve(path) : findExecutable(path).catch(() => path);
    this.#toolPaths ??= Promise.all([
      findExecutable('setpriv'),
      findExecutable('unshare'),
      absolute(this.#options.prlimitPath),
      absolute(this.#options.bwrapPath),
    ]).then(([setpriv, unshare, prlimit, bwrap]) => ({ setpriv, unshare, prlimit, bwrap }));
    return this.#toolPaths;
  }

  #probe(): Promise<HostFacts> {
    this.#facts ??= (async () => {
      const uid = this.#takeUid(process.getuid?.() === 0);
      const dir = await this.#dirs.create(`probe-${randomBytes(3).toString('hex')}`, uid, NO_MODULES, false);
      try {
        return await probeHost(this.#options, { dir, uid });
      } finally {
        await this.#dirs.remove(dir);
        if (uid !== null) this.#uids.delete(uid);
      }
    })();
    return this.#facts;
  }

  async start(spec: VmSpec): Promise<Vm> {
    const facts = await this.#probe();
    const { options } = spec;
    if (options.sandbox && facts.sandboxUnavailable) {
      throw new StepError(
        'sandbox_unavailable',
        `step needs the sandbox, but ${facts.sandboxUnavailable}`,
        false,
      );
    }
    if (facts.prlimitUnavailable) throw new StepError('vm_unavailable', facts.prlimitUnavailable, false);
    const modules = spec.kind === 'function' ? await this.#modules.resolve(options.modules) : NO_MODULES;
    const id = `vm-${++this.#seq}-${randomBytes(3).toString('hex')}`;
    const uid = this.#takeUid(facts.root);
    let dir: string | null = null;
    let cgroup: VmCgroup | null = null;
    let child: ChildProcess | null = null;
    const v8Flags = heapFlags(options.memoryMb);
    const blob = spec.kind === 'function' ? (this.#snapshots?.lookup(v8Flags) ?? null) : null;
    try {
      dir = await this.#dirs.create(id, uid, modules, !options.sandbox, spec.kind === 'function');
      const notes: string[] = [];
      let cgroupReason = facts.cgroupReason;
      if (facts.cgroups) {
        cgroup = await facts.cgroups
          .create({ memoryBytes: memoryBytes(options), pids: options.pids, cpus: this.#options.cpus })
          .catch((err: Error) => {
            cgroupReason = `cgroup creation failed: ${err.message}`;
            return null;
          });
      }
      const limits = { cgroup: cgroup !== null, ownUid: uid !== null, maxFileMb: this.#options.maxFileMb };
      notes.push(...fallbackNotes(limits, cgroupReason));
      if (!options.sandbox) {
        notes.push(
          'sandbox off for this step: no namespaces, and the network is not fenced (vm.network is not enforced)',
        );
      }
      const guestEnv: Record<string, string> = {
        HOME: dir,
        TMPDIR: options.sandbox ? '/tmp' : `${dir}/tmp`,
        ...(spec.kind === 'command'
          ? { CONVEYOR_OUTPUT: `${dir}/${FILE_NAMES.output}`, CONVEYOR_EVENTS: `${dir}/${FILE_NAMES.events}` }
          : {}),
      };
      let argv =
        spec.kind === 'function'
          ? this.#nodeArgv(dir, modules, spec, v8Flags, blob)
          : ['/bin/sh', '-c', spec.command ?? ''];
      if (options.sandbox) {
        const readOnly = spec.kind === 'function' ? [blob ?? this.#runner, ...modules.readable] : [];
        const mounts = { dir, readOnly, network: options.network, tmpBytes: memoryBytes(options) };
        argv = [this.#options.bwrapPath, ...bwrapArgs(facts.system, mounts), ...argv];
      }
      const tools = await this.#tools();
      if (options.sandbox) argv[0] = tools.bwrap;
      argv = [tools.prlimit, ...rlimitArgs(options, limits), '--', ...argv];
      // Unsandboxed and root: a PID namespace of its own, made before the switch to the VM's uid,
      // so the whole tree dies with its worker (bubblewrap gives a sandboxed VM its own, and
      // --die-with-parent). Otherwise at least the parent-death signal.
      const contained = !options.sandbox && uid !== null;
      const death = [tools.setpriv, '--pdeathsig', 'KILL', '--'];
      argv = contained
        ? [
            ...death,
            tools.unshare,
            '--pid',
            '--fork',
            '--mount-proc',
            '--kill-child=KILL',
            '--',
            tools.setpriv,
            '--reuid',
            String(uid),
            '--regid',
            String(uid),
            '--clear-groups',
            ...death.slice(1),
            ...argv,
          ]
        : [...death, ...argv];
      if (cgroup) argv = ['/bin/sh', '-c', GATE, 'conveyor-vm-gate', ...argv];
      child = spawn(argv[0]!, argv.slice(1), {
        cwd: dir,
        env: { PATH: GUEST_PATH, ...withoutLoaderVariables(spec.env), ...guestEnv },
        // Its own process group (and session): the whole group can be killed at once.
        detached: true,
        stdio: [
          cgroup ? 'pipe' : 'ignore',
          'pipe',
          'pipe',
          ...(spec.kind === 'function' ? ['pipe' as const] : []),
        ],
        ...(uid === null || contained ? {} : { uid, gid: uid }),
      });
      await spawned(child);
      if (cgroup) {
        await cgroup.join(child.pid!);
        child.stdin!.end('go\n');
      }
      const channel =
        spec.kind === 'function' ? new GuestChannel(child.stdio[3] as Duplex, MAX_MESSAGE_BYTES) : null;
      const vmDir = dir;
      const vm: Vm = new ProcessVm({
        id,
        spec,
        sandboxed: options.sandbox,
        child,
        channel,
        notes,
        guestEnv,
        dir: vmDir,
        cgroup,
        killByUid: uid === null ? null : () => killAllOfUid(uid),
        release: async () => {
          this.#live.delete(vm);
          await this.#dirs.remove(vmDir);
          if (uid !== null) this.#uids.delete(uid);
        },
      });
      this.#live.add(vm);
      if (channel) await waitReady(vm, channel);
      return vm;
    } catch (err) {
      if (blob && child && (child.exitCode !== null || child.signalCode !== null))
        this.#snapshots?.suspect(blob);
      if (child?.pid) killGroup(child.pid);
      await cgroup?.remove().catch(() => {});
      if (dir) await this.#dirs.remove(dir).catch(() => {});
      if (uid !== null) this.#uids.delete(uid);
      throw err instanceof StepError
        ? err
        : new StepError('vm_start_failed', `VM did not start: ${(err as Error).message}`, true, {
            cause: err,
          });
    }
  }

  #nodeArgv(
    dir: string,
    modules: ResolvedModules,
    spec: VmSpec,
    v8Flags: string[],
    blob: string | null,
  ): string[] {
    const sandbox = spec.options.sandbox;
    return [
      this.#options.nodePath,
      // The permission model: reads only of the runner, the VM's directory and the allowed
      // modules; writes only there; no child processes, worker threads, addons or WASI. (A
      // snapshot blob is read by Node.js itself, before the permission model starts.)
      '--experimental-permission',
      ...(blob ? [] : [`--allow-fs-read=${this.#runner}`]),
      `--allow-fs-read=${dir}`,
      ...modules.readable.map((path) => `--allow-fs-read=${path}`),
      `--allow-fs-write=${dir}`,
      // Inside the sandbox /tmp is the VM's own tmpfs.
      ...(sandbox ? ['--allow-fs-read=/tmp', '--allow-fs-write=/tmp'] : []),
      '--no-addons',
      '--disable-warning=ExperimentalWarning',
      '--enable-source-maps',
      ...v8Flags,
      ...(blob ? ['--snapshot-blob', blob] : [this.#runner]),
      dir,
    ];
  }

  #takeUid(root: boolean): number | null {
    const range = this.#options.guestUids;
    if (!root || range === false) return null;
    // Random rather than sequential: workers on one host do not coordinate, and a random pick
    // from a large range makes two of them choosing the same uid at once vanishingly rare.
    for (;;) {
      const uid = range.first + randomInt(range.count);
      if (!this.#uids.has(uid) || this.#uids.size >= range.count) {
        this.#uids.add(uid);
        return uid;
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#live].map((vm) => vm.dispose()));
    // A build still running would write into the directory about to be removed.
    await this.#snapshots?.settled();
    const facts = await this.#facts?.catch(() => null);
    await facts?.cgroups?.close();
    await this.#dirs.close();
  }
}

function spawned(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
}

async function waitReady(vm: Vm, channel: GuestChannel): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      channel.listen({
        message: (m) =>
          m.t === 'ready' ? resolve() : reject(new Error(`guest sent "${m.t}" before "ready"`)),
        error: reject,
      });
      void vm.exited.then((exit) => {
        const stderr = String(vm.stderr.read() ?? '')
          .trim()
          .slice(-2000);
        reject(
          new Error(
            `runtime exited (${exit.code ?? exit.signal}) before it was ready${stderr ? `: ${stderr}` : ''}`,
          ),
        );
      });
      timer = setTimeout(
        () => reject(new Error(`runtime not ready after ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
    });
  } catch (err) {
    await vm.dispose();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** `kill -9 -1` as the VM's uid: every process of that uid, wherever it went. */
function killAllOfUid(uid: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', 'kill -9 -1'], { uid, gid: uid, stdio: 'ignore' });
    child.on('error', () => resolve());
    child.on('close', () => resolve());
  });
}

/** A guest's env without the loader's variables: they would reach the launchers (`prlimit`, `bwrap`). */
function withoutLoaderVariables(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !LOADER_VARIABLES.test(name)));
}
