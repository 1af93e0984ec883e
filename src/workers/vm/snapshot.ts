/**
 * V8 startup snapshots of the guest runner: `node --build-snapshot guest-runner.cjs` once, then
 * every function VM starts as `node --snapshot-blob <blob> <dir>`, with the runner's modules
 * already loaded instead of loading them anew (it cuts the CPU a VM costs before `ready`; see
 * docs/vm.md for the figures). A blob only loads under the V8 flags it was built with, and the
 * heap flags follow each step's `memoryMb`, so there is one blob per set of V8 flags, built in the
 * background the first time that set is asked for (VMs start without a snapshot until then) and
 * proven to load before it is used. Blobs live in the driver's private base directory (searchable,
 * not listable, by the guests' uids), read-only; they hold the runner's heap before any step ran.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GUEST_PATH } from './driver.ts';

/** At most this many flag sets get a blob (memoryMb values in use); others start without one. */
const MAX_BLOBS = 8;
/** A build or check that takes longer than this is abandoned (the VMs start without). */
const BUILD_TIMEOUT_MS = 60_000;

type Entry =
  | { state: 'building'; done: Promise<void> }
  | { state: 'ready'; blob: string; v8Flags: readonly string[] }
  | { state: 'failed'; reason: string };

/** The argument that makes the runner, started from a blob, exit 0 at once (the load check). */
export const SNAPSHOT_CHECK = 'conveyor-snapshot-check';

/** Builds and hands out snapshot blobs of one runner script for one Node.js binary. */
export class RunnerSnapshots {
  readonly #entries = new Map<string, Entry>();
  #seq = 0;

  constructor(
    private readonly nodePath: string,
    private readonly runner: string,
    /** Resolves to the directory blobs go in (created on first use). */
    private readonly dir: () => Promise<string>,
    /** Resolves to the absolute path of `setpriv`: a build dies with its worker. */
    private readonly setpriv: () => Promise<string>,
  ) {}

  /**
   * The blob for `v8Flags` when one is ready; otherwise `null`, and a build starts (once per
   * flag set) so that later VMs have it.
   */
  lookup(v8Flags: readonly string[]): string | null {
    const key = v8Flags.join(' ');
    const entry = this.#entries.get(key);
    if (entry) return entry.state === 'ready' ? entry.blob : null;
    if (this.#entries.size < MAX_BLOBS) {
      const done = this.#build(v8Flags).then((next) => {
        this.#entries.set(key, next);
      });
      this.#entries.set(key, { state: 'building', done });
    }
    return null;
  }

  /** Resolves once no build is under way. */
  async settled(): Promise<void> {
    await Promise.all([...this.#entries.values()].map((e) => (e.state === 'building' ? e.done : null)));
  }

  /** What each flag set's blob is doing, for the benchmark's notes. */
  states(): Record<string, string> {
    return Object.fromEntries(
      [...this.#entries].map(([key, e]) => [key, e.state === 'failed' ? `failed: ${e.reason}` : e.state]),
    );
  }

  /**
   * A VM started from `blob` died before it was ready: the blob is checked again (the Node.js
   * binary may have been replaced under the worker, or the file damaged) and dropped for good if
   * it no longer loads; that flag set then starts without a snapshot.
   */
  suspect(blob: string): void {
    for (const [key, entry] of this.#entries) {
      if (entry.state !== 'ready' || entry.blob !== blob) continue;
      const done = this.#node([...entry.v8Flags, '--snapshot-blob', blob, SNAPSHOT_CHECK]).then(
        () => {
          this.#entries.set(key, entry);
        },
        (err: Error) => {
          this.#entries.set(key, { state: 'failed', reason: `it no longer loads: ${err.message}` });
        },
      );
      this.#entries.set(key, { state: 'building', done });
    }
  }

  /** Runs this Node.js under the parent-death signal: a SIGKILLed worker leaves no build behind. */
  async #node(args: string[]): Promise<void> {
    await run(await this.setpriv(), ['--pdeathsig', 'KILL', '--', this.nodePath, ...args]);
  }

  async #build(v8Flags: readonly string[]): Promise<Entry> {
    let blob = '';
    try {
      const dir = await this.dir();
      await mkdir(dir, { recursive: true, mode: 0o711 });
      blob = join(dir, `runner-${++this.#seq}.blob`);
      await this.#node([...v8Flags, '--snapshot-blob', blob, '--build-snapshot', this.runner]);
      // Root builds it; guests of other uids only read it.
      await chmod(blob, 0o444);
      await this.#node([...v8Flags, '--snapshot-blob', blob, SNAPSHOT_CHECK]);
      return { state: 'ready', blob, v8Flags };
    } catch (err) {
      if (blob) await rm(blob, { force: true }).catch(() => {});
      return { state: 'failed', reason: (err as Error).message };
    }
  }
}

/** Runs `file` with a clean environment; rejects with its stderr unless it exits 0. */
function run(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: { PATH: GUEST_PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 2000) stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`node ${args.at(-1)} exited ${code ?? signal}: ${stderr.trim().slice(-500)}`));
    });
  });
}
