/**
 * Per-VM cgroups: memory, pids and CPU bandwidth for the whole process tree, on cgroup v2 or v1,
 * under the worker's own cgroup (so a host's accounting of the worker still holds). Used only
 * where a hierarchy is writable; otherwise the driver falls back to rlimits and says so.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { access, mkdir, readdir, readFile, realpath, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/** Limits of one VM's cgroup. */
export interface CgroupLimits {
  memoryBytes: number;
  pids: number;
  /** CPU bandwidth in cores. */
  cpus: number;
}

/** What a VM's cgroup observed. */
export interface CgroupStats {
  oomKills: number;
  cpuSeconds: number | undefined;
  pidsLimitHits: number;
}

type Controller = 'memory' | 'pids' | 'cpu' | 'cpuacct';
const V1_REQUIRED: Controller[] = ['memory', 'pids'];
const V1_OPTIONAL: Controller[] = ['cpu', 'cpuacct'];
const CFS_PERIOD_US = 100_000;

/** One VM's cgroup: a directory per v1 hierarchy, or one v2 directory. */
export class VmCgroup {
  constructor(
    readonly version: 1 | 2,
    private readonly dirs: Partial<Record<Controller, string>>,
  ) {}

  /** Every directory, once (v1 hierarchies may be co-mounted; v2 has one). */
  get directories(): string[] {
    return [...new Set(Object.values(this.dirs))];
  }

  /**
   * Moves `pid` (and its future children) into this cgroup. A migration waits for the kernel
   * (an RCU grace period on v1, milliseconds): asynchronous, and all hierarchies at once.
   */
  async join(pid: number): Promise<void> {
    await Promise.all(this.directories.map((dir) => writeFile(join(dir, 'cgroup.procs'), String(pid))));
  }

  /** Reads what the limits observed; missing files read as zero. */
  async stats(): Promise<CgroupStats> {
    const d = this.dirs;
    if (this.version === 2) {
      const [events, cpu, pids] = await Promise.all([
        read(d.memory, 'memory.events'),
        read(d.cpu, 'cpu.stat'),
        read(d.pids, 'pids.events'),
      ]);
      const usage = field(cpu, 'usage_usec');
      return {
        oomKills: field(events, 'oom_kill') ?? 0,
        cpuSeconds: usage === undefined ? undefined : usage / 1e6,
        pidsLimitHits: field(pids, 'max') ?? 0,
      };
    }
    const [oom, usage, pids] = await Promise.all([
      read(d.memory, 'memory.oom_control'),
      read(d.cpuacct, 'cpuacct.usage'),
      read(d.pids, 'pids.events'),
    ]);
    return {
      oomKills: field(oom, 'oom_kill') ?? 0,
      cpuSeconds: usage.trim() === '' ? undefined : Number(usage) / 1e9,
      pidsLimitHits: field(pids, 'max') ?? 0,
    };
  }

  /** SIGKILLs every process in the cgroup until it is empty (bounded: pids.max caps re-forks). */
  async killAll(): Promise<void> {
    for (const dir of this.directories) {
      if (this.version === 2 && (await write(join(dir, 'cgroup.kill'), '1').then(yes, no))) continue;
      for (let round = 0; round < 100; round++) {
        const pids = (await read(dir, 'cgroup.procs')).split('\n').filter(Boolean).map(Number);
        if (pids.length === 0) break;
        for (const pid of pids) killQuietly(pid);
        await delay(2);
      }
    }
  }

  /** Removes the directories; retries while the kernel finishes reaping. */
  async remove(): Promise<void> {
    await this.killAll();
    await Promise.all(this.directories.map((dir) => removeDir(dir)));
  }
}

/** Creates VM cgroups below `<own cgroup>/conveyor-<pid>-<random>` in each hierarchy. */
export class CgroupManager {
  #count = 0;

  private constructor(
    readonly version: 1 | 2,
    private readonly bases: Partial<Record<Controller, string>>,
  ) {}

  /** Finds a writable hierarchy; returns the manager, or the reason there is none. */
  static async detect(root: string): Promise<CgroupManager | string> {
    const own = await readFile('/proc/self/cgroup', 'utf8').catch(() => '');
    const tag = `conveyor-${process.pid}-${randomBytes(3).toString('hex')}`;
    try {
      const manager = (await exists(join(root, 'cgroup.controllers')))
        ? await CgroupManager.#v2(root, own, tag)
        : await CgroupManager.#v1(root, own, tag);
      // Proves the limits can be written, not only the directories made.
      const probe = await manager.create({ memoryBytes: 64 * 2 ** 20, pids: 16, cpus: 1 });
      await probe.remove();
      return manager;
    } catch (err) {
      return `no writable cgroup hierarchy under ${root} (${(err as Error).message})`;
    }
  }

  static async #v2(root: string, own: string, tag: string): Promise<CgroupManager> {
    const path = /^0::(.*)$/m.exec(own)?.[1] ?? '/';
    const parent = join(root, path);
    const enabled = (await read(parent, 'cgroup.subtree_control')).split(/\s+/);
    const wanted = ['memory', 'pids', 'cpu'].filter((c) => !enabled.includes(c));
    // Fails with EBUSY when the worker's cgroup holds processes and is not the root: then the
    // worker must run in a delegated cgroup, and rlimits are the fallback.
    if (wanted.length)
      await write(join(parent, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
    await sweepStale(parent);
    const base = join(parent, tag);
    await mkdir(base);
    await write(join(base, 'cgroup.subtree_control'), '+memory +pids +cpu');
    return new CgroupManager(2, { memory: base, pids: base, cpu: base, cpuacct: base });
  }

  static async #v1(root: string, own: string, tag: string): Promise<CgroupManager> {
    const bases: Partial<Record<Controller, string>> = {};
    for (const controller of [...V1_REQUIRED, ...V1_OPTIONAL]) {
      const mount = join(root, controller);
      if (!(await exists(mount))) {
        if (V1_REQUIRED.includes(controller)) throw new Error(`no ${controller} hierarchy`);
        continue;
      }
      const line = own.split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller));
      const parent = join(await realpath(mount), line?.split(':')[2] ?? '/');
      await sweepStale(parent);
      const base = join(parent, tag);
      await mkdir(base, { recursive: true });
      bases[controller] = base;
    }
    return new CgroupManager(1, bases);
  }

  /** Makes one VM's cgroup with its limits. */
  async create(limits: CgroupLimits): Promise<VmCgroup> {
    const name = `vm-${++this.#count}`;
    const dirs: Partial<Record<Controller, string>> = {};
    for (const [controller, base] of Object.entries(this.bases) as [Controller, string][]) {
      dirs[controller] = join(base, name);
      await mkdir(dirs[controller], { recursive: true });
    }
    const cgroup = new VmCgroup(this.version, dirs);
    try {
      await this.#limit(dirs, limits);
    } catch (err) {
      await cgroup.remove().catch(() => {});
      throw err;
    }
    return cgroup;
  }

  async #limit(dirs: Partial<Record<Controller, string>>, limits: CgroupLimits): Promise<void> {
    const quota = String(Math.round(limits.cpus * CFS_PERIOD_US));
    if (this.version === 2) {
      const dir = dirs.memory!;
      await write(join(dir, 'memory.max'), String(limits.memoryBytes));
      await write(join(dir, 'memory.swap.max'), '0').catch(() => {});
      await write(join(dir, 'pids.max'), String(limits.pids));
      await write(join(dir, 'cpu.max'), `${quota} ${CFS_PERIOD_US}`);
      return;
    }
    await write(join(dirs.memory!, 'memory.limit_in_bytes'), String(limits.memoryBytes));
    // Without this, a guest could spill past its limit into swap where swap exists.
    await write(join(dirs.memory!, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes)).catch(
      () => {},
    );
    await write(join(dirs.pids!, 'pids.max'), String(limits.pids));
    if (dirs.cpu) {
      await write(join(dirs.cpu, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
      await write(join(dirs.cpu, 'cpu.cfs_quota_us'), quota);
    }
  }

  /** Removes the worker's base directories (every VM cgroup must be removed already). */
  async close(): Promise<void> {
    await Promise.all([...new Set(Object.values(this.bases))].map((dir) => removeDir(dir)));
  }
}

/**
 * Removes what a crashed worker left below `parent`: its VM cgroups are empty once their
 * processes died with it (rmdir fails harmlessly on any that are not), then its base directory.
 */
async function sweepStale(parent: string): Promise<void> {
  const entries = await readdir(parent).catch(() => [] as string[]);
  for (const name of entries) {
    const pid = Number(/^conveyor-(\d+)-[0-9a-f]+$/.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    const base = join(parent, name);
    const children = await readdir(base, { withFileTypes: true }).catch(() => []);
    for (const child of children)
      if (child.isDirectory()) await rmdir(join(base, child.name)).catch(() => {});
    await rmdir(base).catch(() => {});
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function removeDir(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      // EBUSY while the last exiting tasks are reaped; give up quietly after ~1 s.
      if (code !== 'EBUSY' || attempt >= 100) return;
      await delay(10);
    }
  }
}

/*
 * Control files live in kernel memory, not on a disk: reading one or writing a limit
 * synchronously costs microseconds, while the asynchronous calls cost a thread-pool round trip
 * each (four for a readFile), and a VM's life reads and writes some thirty of them. (Moving a
 * process into a cgroup is the exception: see `join`.)
 */

/** Writes a control file; rejects as `writeFile` would. */
async function write(path: string, data: string): Promise<void> {
  writeFileSync(path, data);
}

/** Reads a control file; missing or unreadable reads as ''. */
async function read(dir: string | undefined, file: string): Promise<string> {
  if (!dir) return '';
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch {
    return '';
  }
}

function field(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(yes, no);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone: exactly what we wanted.
  }
}

const yes = () => true;
const no = () => false;
