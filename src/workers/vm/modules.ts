/**
 * `vm.modules`: packages of the worker's own node_modules a function may import. Each named
 * package is linked into the VM's directory (so `import 'yaml'` resolves there), and it and its
 * dependencies, by real path, become the only other readable places: the permission model's
 * `--allow-fs-read` and, in the sandbox, read-only bind mounts at the same paths.
 */
import { access, readFile, realpath } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StepError } from '../../errors.ts';

/** The links a VM's directory gets and the paths its guest may read. */
export interface ResolvedModules {
  links: { name: string; target: string }[];
  readable: string[];
}

/** Resolves package names from `root`, the way Node.js would from a file there (memoized). */
export class ModuleResolver {
  #cache = new Map<string, Promise<ResolvedModules>>();

  constructor(private readonly root: string) {}

  /** Throws a non-retriable `StepError` for a package the worker does not have. */
  resolve(names: readonly string[]): Promise<ResolvedModules> {
    const key = names.join('\0');
    let entry = this.#cache.get(key);
    if (!entry) {
      entry = this.#resolve(names);
      // A failure is not cached: the package may be installed later.
      entry.catch(() => this.#cache.delete(key));
      this.#cache.set(key, entry);
    }
    return entry;
  }

  async #resolve(names: readonly string[]): Promise<ResolvedModules> {
    const links: ResolvedModules['links'] = [];
    const readable = new Set<string>();
    for (const name of names) {
      const target = await findPackage(this.root, name);
      if (!target) {
        throw new StepError(
          'module_not_found',
          `vm.modules: "${name}" is not installed in the worker's node_modules`,
          false,
        );
      }
      links.push({ name, target });
      await addWithDependencies(target, readable);
    }
    return { links, readable: [...readable].sort() };
  }
}

async function addWithDependencies(dir: string, seen: Set<string>): Promise<void> {
  if (seen.has(dir)) return;
  seen.add(dir);
  const manifest = await readFile(join(dir, 'package.json'), 'utf8')
    .then((text) => JSON.parse(text) as Record<string, unknown>)
    .catch(() => ({}) as Record<string, unknown>);
  const deps = new Set<string>();
  for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
    const value = manifest[field];
    if (value && typeof value === 'object') for (const dep of Object.keys(value)) deps.add(dep);
  }
  for (const dep of deps) {
    // A missing optional or peer dependency is the package's own business, as under plain Node.
    const found = await findPackage(dir, dep);
    if (found) await addWithDependencies(found, seen);
  }
}

/** `<dir>/node_modules/<name>` from `from` upwards, by real path. */
async function findPackage(from: string, name: string): Promise<string | null> {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (
      await access(join(candidate, 'package.json')).then(
        () => true,
        () => false,
      )
    ) {
      return realpath(candidate);
    }
    if (dirname(dir) === dir) return null;
  }
}
