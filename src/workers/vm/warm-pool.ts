/**
 * Function VMs started ahead of time, already sandboxed and limited, waiting for a step. A VM
 * leaves the pool once, serves one step and is destroyed: the pool never takes one back, so
 * nothing — globals, files, /tmp — can pass from one step or run to the next.
 *
 * The pool is sized to demand: it keeps as many VMs ready or starting as the most function
 * steps that were in flight at once lately (never fewer than `min`, never more than `max`), so
 * a burst of steps finds each its VM started while the one before it ran. Refills run in
 * parallel (up to `parallel` starts at once). When demand falls, the surplus is destroyed after
 * `idleMs`.
 */
import type { Vm } from './driver.ts';

/** Counters, for tests, the benchmark and `/metrics`. */
export interface PoolStats {
  /** VMs handed to steps (ready ones and ones a step waited for while they started). */
  taken: number;
  /** VMs the pool started. */
  started: number;
  /** Starts that failed. */
  failed: number;
  /** VMs waiting now. */
  idle: number;
  /** Starts under way now. */
  starting: number;
  /** How many VMs the pool aims to hold (ready or starting) now. */
  target: number;
  /** Surplus VMs destroyed after demand fell. */
  shrunk: number;
  /** The last start failure, if any. */
  lastError: string | null;
}

/** How the pool sizes itself. */
export interface PoolSizing {
  /** VMs kept even without demand. */
  min: number;
  /** Never more VMs ready or starting than this. */
  max: number;
  /** VM starts under way at once, at most. */
  parallel: number;
  /** After this long, the target falls back to the demand of the moment (and the surplus goes). */
  idleMs: number;
}

/** After this many failed starts in a row, refills pause (a broken host must not spin). */
const MAX_FAILURES = 3;
const PAUSE_MS = 5000;

/** A start under way; `claimed` once a step waits for it (it then never enters the pool). */
interface Starting {
  vm: Promise<Vm | null>;
  claimed: boolean;
}

/** The warm pool of one VM profile. */
export class WarmPool {
  #idle: Vm[] = [];
  readonly #starting = new Set<Starting>();
  #closed = false;
  #failures = 0;
  #pause: NodeJS.Timeout | null = null;
  #decay: NodeJS.Timeout | null = null;
  /** Function steps of this profile in flight now, and the most at once since the last decay. */
  #demand = 0;
  #peak = 0;
  #waiters: (() => void)[] = [];
  #stats = { taken: 0, started: 0, failed: 0, shrunk: 0, lastError: null as string | null };

  constructor(
    private readonly start: () => Promise<Vm>,
    readonly sizing: PoolSizing,
  ) {}

  /** How many VMs (ready or starting) the pool aims for now. */
  get target(): number {
    return Math.min(this.sizing.max, Math.max(this.sizing.min, this.#peak));
  }

  /** Starts VMs until ready plus starting (unclaimed) reach the target. */
  fill(): void {
    const open = !this.#closed && !this.#pause;
    while (
      open &&
      this.#idle.length + this.#unclaimed() < this.target &&
      this.#starting.size < this.sizing.parallel
    ) {
      this.#startOne();
    }
    this.#notify();
  }

  /**
   * A step of this profile begins (`+1`) or ends (`-1`). Demand raises the target at once; it
   * falls back only after `idleMs`, so steps that follow one another keep their VMs coming.
   */
  demand(delta: 1 | -1): void {
    this.#demand = Math.max(0, this.#demand + delta);
    if (this.#demand > this.#peak) this.#peak = this.#demand;
    if (!this.#decay && !this.#closed && this.#peak > this.sizing.min) {
      this.#decay = setTimeout(() => this.#decayNow(), this.sizing.idleMs);
      this.#decay.unref();
    }
  }

  /**
   * A VM no step has used, now owned by the caller: a ready one, else one still starting that
   * no other step waits for (it is further along than a cold start would be); `null` when there
   * is neither, or the start the caller waited for failed. The pool does not refill here: a
   * refill is a Node.js start that would compete for the CPU with the very step that takes a
   * VM, so the caller calls `fill()` once its step is under way.
   */
  async acquire(): Promise<Vm | null> {
    const ready = this.#idle.shift();
    if (ready) {
      this.#stats.taken++;
      return ready;
    }
    const pending = [...this.#starting].find((s) => !s.claimed);
    if (!pending) return null;
    pending.claimed = true;
    const vm = await pending.vm;
    if (vm) this.#stats.taken++;
    return vm;
  }

  /** Resolves once ready VMs reach the target (or the pool is closed, or paused after failures). */
  whenFull(): Promise<void> {
    if (this.#full()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  stats(): PoolStats {
    return { ...this.#stats, idle: this.#idle.length, starting: this.#starting.size, target: this.target };
  }

  /** Destroys the waiting VMs and those still starting (a claimed one belongs to its step). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pause) clearTimeout(this.#pause);
    if (this.#decay) clearTimeout(this.#decay);
    const idle = this.#idle.splice(0);
    await Promise.all([...idle.map((vm) => vm.dispose()), ...[...this.#starting].map((s) => s.vm)]);
    this.#notify();
  }

  #unclaimed(): number {
    let n = 0;
    for (const s of this.#starting) if (!s.claimed) n++;
    return n;
  }

  #startOne(): void {
    const entry: Starting = { vm: Promise.resolve(null), claimed: false };
    entry.vm = this.start().then(
      (vm) => {
        this.#starting.delete(entry);
        this.#stats.started++;
        this.#failures = 0;
        if (entry.claimed) return vm;
        // Closed, or demand fell while it started: it was never used, but it is not needed.
        if (this.#closed || this.#idle.length >= this.target) {
          if (!this.#closed) this.#stats.shrunk++;
          return vm.dispose().then(() => null);
        }
        this.#keep(vm);
        this.fill();
        return null;
      },
      (err: Error) => {
        this.#starting.delete(entry);
        this.#stats.failed++;
        this.#stats.lastError = err.message;
        if (++this.#failures >= MAX_FAILURES && !this.#pause) {
          this.#failures = 0;
          this.#pause = setTimeout(() => {
            this.#pause = null;
            this.fill();
          }, PAUSE_MS);
          this.#pause.unref();
        }
        this.fill();
        return null;
      },
    );
    this.#starting.add(entry);
  }

  #keep(vm: Vm): void {
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

  #decayNow(): void {
    this.#decay = null;
    this.#peak = this.#demand;
    const surplus = this.#idle.length - this.target;
    if (surplus > 0) {
      // The longest-waiting go first.
      for (const vm of this.#idle.splice(0, surplus)) void vm.dispose();
      this.#stats.shrunk += surplus;
    }
    if (this.#peak > this.sizing.min) {
      this.#decay = setTimeout(() => this.#decayNow(), this.sizing.idleMs);
      this.#decay.unref();
    }
    this.#notify();
  }

  #full(): boolean {
    return this.#closed || this.#pause !== null || this.#idle.length >= this.target;
  }

  #notify(): void {
    if (!this.#full()) return;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}
