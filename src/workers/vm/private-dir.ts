/**
 * Each VM's private directory: its HOME, working directory and the only writable place it shares
 * with the worker. The guest owns the directory, so the worker treats everything in it as
 * hostile: files are opened without following symlinks, only regular files are read, and never
 * more than the cap.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StepError } from '../../errors.ts';
import type { ResolvedModules } from './modules.ts';

/**
 * An empty module left in a function VM's directory: the guest runner imports it before saying
 * `ready`, so that Node.js's module loader is started before the step's own module arrives, then
 * removes it (guest-runner.cjs keeps the same name).
 */
export const WARMUP_FILE = '.conveyor-warmup.mjs';

/** Creates and removes VM directories below one per-worker base directory. */
export class PrivateDirs {
  #base: Promise<string> | null = null;

  constructor(private readonly tmpDir: string) {}

  /**
   * Makes `<base>/<id>` owned by `uid` (when given), with the module links and, for a function
   * VM (`warmup`), the empty module its runner starts the module loader on.
   */
  async create(
    id: string,
    uid: number | null,
    modules: ResolvedModules,
    withTmp: boolean,
    warmup = false,
  ): Promise<string> {
    if (uid !== null) await this.#checkSearchable();
    const dir = join(await this.#ensureBase(), id);
    await mkdir(dir, { mode: 0o700 });
    // Written while the directory is still the worker's alone: no guest runs yet.
    if (warmup) await writeFile(join(dir, WARMUP_FILE), 'export {};\n', { mode: 0o444, flag: 'wx' });
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

  /** The per-worker base directory (mode 0711), created on first use. */
  base(): Promise<string> {
    return this.#ensureBase();
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
