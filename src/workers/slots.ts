/**
 * `WORKER_CONCURRENCY` per process: one pool of slots shared by every step queue the worker
 * consumes. BullMQ's concurrency is per `Worker`, so each step queue's Worker runs the processor
 * through `withSlot`, and `trim` keeps the Workers from fetching jobs no slot can take (a fetched
 * job is locked to this process; left in the queue, any other worker can take it).
 */
import { DelayedError, type Job, type Processor, type Worker } from 'bullmq';

/** Why a job waiting for a slot gave up: the worker is stopping, or the job's signal fired. */
export class SlotRefusedError extends Error {
  override readonly name = 'SlotRefusedError';
  constructor(readonly reason: 'shutdown' | 'aborted') {
    super(
      reason === 'shutdown' ? 'the worker is stopping' : 'the job was stopped while it waited for a slot',
    );
  }
}

/** A counting semaphore of `size` slots, first come first served. */
export class Slots {
  private running = 0;
  private readonly waiters: Array<{ grant: () => void; refuse: (why: SlotRefusedError) => void }> = [];
  private closed = false;
  /** Steps started since the worker started. */
  started = 0;

  constructor(
    readonly size: number,
    private readonly onChange: () => void = () => {},
  ) {}

  /** Slots running a step now. */
  get busy(): number {
    return this.running;
  }

  /** Jobs holding no slot yet. */
  get queued(): number {
    return this.waiters.length;
  }

  /** Waits for a slot; rejects with a `SlotRefusedError` after `close()` or when `signal` fires. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new SlotRefusedError('shutdown'));
    if (this.running < this.size && this.waiters.length === 0) {
      this.take();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.take();
          resolve();
        },
        refuse: (why: SlotRefusedError) => {
          signal?.removeEventListener('abort', onAbort);
          reject(why);
        },
      };
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        waiter.refuse(new SlotRefusedError(signal?.reason === 'shutdown' ? 'shutdown' : 'aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Gives a slot back; the oldest waiter gets it. */
  release(): void {
    this.running--;
    this.waiters.shift()?.grant();
    this.onChange();
  }

  /** Refuses every waiter and every later `acquire` (the worker is stopping). */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.refuse(new SlotRefusedError('shutdown'));
  }

  private take(): void {
    this.running++;
    this.started++;
    this.onChange();
  }
}

/**
 * Runs `processor` in a slot. A job still waiting when the worker stops goes straight back to
 * the queue for another worker; one whose lock was lost meanwhile belongs to another worker.
 * BullMQ renews the lock of a job that waits here: it is active from BullMQ's point of view.
 */
export function withSlot<D, R>(slots: Slots, processor: Processor<D, R>): Processor<D, R> {
  return async (job: Job<D, R>, token?: string, signal?: AbortSignal) => {
    try {
      await slots.acquire(signal);
    } catch (err) {
      if (err instanceof SlotRefusedError && err.reason === 'shutdown' && token) {
        await job.moveToWait(token);
        throw new DelayedError();
      }
      throw new Error(`stopped while waiting for a slot: ${String(signal?.reason ?? err)}`, { cause: err });
    }
    try {
      return await processor(job, token, signal);
    } finally {
      slots.release();
    }
  };
}

/**
 * Sets each step Worker's BullMQ concurrency to what it holds plus the free slots, at least 1:
 * once every slot is busy, a Worker fetches at most one more job (BullMQ's minimum), instead of
 * up to WORKER_CONCURRENCY per queue.
 */
export function trim(slots: Slots, workers: Iterable<{ worker: Worker; inFlight: number }>): void {
  const free = Math.max(0, slots.size - slots.busy - slots.queued);
  for (const { worker, inFlight } of workers) {
    const next = Math.max(1, Math.min(slots.size, inFlight + free));
    if (worker.concurrency !== next) worker.concurrency = next;
  }
}
