/**
 * A few function VMs started ahead of time, already sandboxed and limited, waiting for a step.
 * A VM leaves the pool once, serves one step and is destroyed: the pool never takes one back,
 * so nothing — globals, files, /tmp — can pass from one step or run to the next. Refills run
 * in the background one VM at a time, to leave the CPU to the steps themselves.
 */
import type { Vm } from './driver.ts';

/** Counters, for tests, the benchmark and `/metrics`. */
export interface PoolStats {
  /** VMs handed to steps. */
  taken: number;
  /** VMs the pool started. */
  started: number;
  /** Starts that failed. */
  failed: number;
  /** VMs waiting now. */
  idle: number;
  /** The last start failure, if any. */
  lastError: string | null;
}

/** After this many failed starts in a row, refills pause (a broken host must not spin). */
const MAX_FAILURES = 3;
const PAUSE_MS = 5000;

/** The warm pool of one VM profile. */
export class WarmPool {
  #idle: Vm[] = [];
  #starting: Promise<void> | null = null;
  #closed = false;
  #failures = 0;
  #pause: NodeJS.Timeout | null = null;
  #waiters: (() => void)[] = [];
  #stats = { taken: 0, started: 0, failed: 0, lastError: null as string | null };

  constructor(
    private readonly start: () => Promise<Vm>,
    readonly size: number,
  ) {}

  /** Begins filling the pool. */
  fill(): void {
    if (this.#closed || this.#starting || this.#pause || this.#idle.length >= this.size) {
      this.#notify();
      return;
    }
    this.#starting = this.#startOne().finally(() => {
      this.#starting = null;
      this.fill();
    });
  }

  /**
   * A ready VM, now owned by the caller; `null` when none waits. The pool does not refill on
   * its own here: a refill is a Node.js start that would compete for the CPU with the very
   * step that just took a VM, so the caller calls `fill()` once its step is under way.
   */
  take(): Vm | null {
    const vm = this.#idle.shift() ?? null;
    if (vm) this.#stats.taken++;
    return vm;
  }

  /** Resolves once the pool is full (or closed, or paused after failures). */
  whenFull(): Promise<void> {
    if (this.#closed || this.#pause || this.#idle.length >= this.size) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  stats(): PoolStats {
    return { ...this.#stats, idle: this.#idle.length };
  }

  /** Destroys the waiting VMs; one still starting is destroyed when it arrives. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pause) clearTimeout(this.#pause);
    const idle = this.#idle.splice(0);
    await Promise.all([...idle.map((vm) => vm.dispose()), this.#starting]);
    this.#notify();
  }

  async #startOne(): Promise<void> {
    let vm: Vm;
    try {
      vm = await this.start();
    } catch (err) {
      this.#stats.failed++;
      this.#stats.lastError = (err as Error).message;
      if (++this.#failures >= MAX_FAILURES) {
        this.#failures = 0;
        this.#pause = setTimeout(() => {
          this.#pause = null;
          this.fill();
        }, PAUSE_MS);
        this.#pause.unref();
      }
      return;
    }
    this.#stats.started++;
    this.#failures = 0;
    if (this.#closed) return vm.dispose();
    this.#idle.push(vm);
    // A VM that dies while waiting (killed from outside, out of memory at start) leaves the pool.
    void vm.exited.then(() => {
      const index = this.#idle.indexOf(vm);
      if (index === -1) return;
      this.#idle.splice(index, 1);
      void vm.dispose();
      this.fill();
    });
  }

  #notify(): void {
    if (!(this.#closed || this.#pause || this.#idle.length >= this.size)) return;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}
