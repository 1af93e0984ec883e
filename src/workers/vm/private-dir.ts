/**
 * Each VM's private directory: its HOME, working directory and the only writable place it shares
 * with the worker. The guest owns the directory, so the worker treats everything in it as
 * hostile: files are opened without following symlinks, only regular files are read, and never
 * more than the cap.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, chown, mkdir, open, rm, stat, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { OutputLimitError, StepError } from '../../errors.ts';
import type { ResolvedModules } from './modules.ts';

/** Creates and removes VM directories below one per-worker base directory. */
export class PrivateDirs {
  #base: Promise<string> | null = null;

  constructor(private readonly tmpDir: string) {}

  /** Makes `<base>/<id>` owned by `uid` (when given), with the module links. */
  async create(id: string, uid: number | null, modules: ResolvedModules, withTmp: boolean): Promise<string> {
    if (uid !== null) await this.#checkSearchable();
    const dir = join(await this.#ensureBase(), id);
    await mkdir(dir, { mode: 0o700 });
    for (const { name, target } of modules.links) {
      const link = join(dir, 'node_modules', name);
      await mkdir(dirname(link), { recursive: true });
      await symlink(target, link);
    }
    // Outside the sandbox there is no private /tmp: TMPDIR points here instead.
    if (withTmp) await mkdir(join(dir, 'tmp'), { mode: 0o700 });
    if (uid !== null) {
      await chown(dir, uid, uid);
      if (withTmp) await chown(join(dir, 'tmp'), uid, uid);
    }
    return dir;
  }

  /** Removes a VM's directory. Only called once no process of the VM can be running. */
  async remove(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true, maxRetries: 2 });
  }

  /** Removes the base directory. */
  async close(): Promise<void> {
    const base = this.#base;
    this.#base = null;
    if (base) await rm(await base, { recursive: true, force: true }).catch(() => {});
  }

  /** Guests run as other uids and must be able to pass through every parent of their dir. */
  async #checkSearchable(): Promise<void> {
    for (let dir = this.tmpDir; ; dir = dirname(dir)) {
      const mode = (await stat(dir)).mode;
      if ((mode & 0o001) === 0) {
        throw new StepError(
          'vm_unavailable',
          `VM directories cannot live under ${this.tmpDir}: ${dir} is not searchable by other users ` +
            `(mode ${(mode & 0o777).toString(8)}), and guests run as uids of their own; use a directory such as /tmp`,
          false,
        );
      }
      if (dirname(dir) === dir) return;
    }
  }

  #ensureBase(): Promise<string> {
    this.#base ??= (async () => {
      const base = join(this.tmpDir, `conveyor-vm-${process.pid}-${randomBytes(4).toString('hex')}`);
      await mkdir(base, { recursive: true });
      // Guests may pass through to their own directory but not list their neighbours.
      await chmod(base, 0o711);
      return base;
    })();
    return this.#base;
  }
}

/** Creates `path` afresh (never through a symlink or over an existing file). */
export async function writePrivateFile(path: string, data: string): Promise<void> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const handle = await open(path, flags, 0o644);
  try {
    await handle.writeFile(data);
  } finally {
    await handle.close();
  }
}

/** Reads a file the guest wrote: `null` when absent; refuses links, FIFOs and more than `maxBytes`. */
export async function readPrivateFile(path: string, maxBytes: number, label: string): Promise<string | null> {
  // O_NONBLOCK: opening a FIFO the guest left in place must not hang the worker.
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP')
      throw new StepError('bad_output', `${label} is a symbolic link; it must be a regular file`, false);
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new StepError('bad_output', `${label} is not a regular file`, false);
    if (stat.size > maxBytes) {
      throw new OutputLimitError(`${label} is ${stat.size} bytes, over the ${maxBytes}-byte cap`);
    }
    const buffer = Buffer.alloc(stat.size);
    const { bytesRead } = await handle.read(buffer, 0, stat.size, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}
