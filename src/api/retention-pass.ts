/**
 * The retention pass: every `intervalMs`, one API process (a Redis lock with a TTL) takes the
 * finished runs whose retention has run out from the expiry index, oldest first, in batches,
 * and removes them whole (run-removal.ts). Their keys' TTLs (set when each run finished) free
 * the memory on time even when no pass runs; the pass removes what TTLs cannot reach: the
 * entries in the listing indexes and the BullMQ jobs. Between batches it yields to the event
 * loop, so a pass over 100,000 runs never holds up a request for more than one batch.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { RunRetention } from '../store/index.ts';
import type { RunRemoval } from './run-removal.ts';

/** Options of the retention pass. */
export interface RetentionPassOptions {
  /** Time between passes; 0 runs none on its own (`runOnce` still works). @defaultValue 600000 */
  intervalMs?: number;
  /** Runs removed per batch (one pipeline of scripts, then their job trees). @defaultValue 200 */
  batchSize?: number;
  /** TTL of the lock, extended after each batch; a crashed holder frees it this soon. @defaultValue 60000 */
  lockTtlMs?: number;
}

/** What one pass did. */
export interface PassResult {
  /** False when another process held the lock, so this one did nothing. */
  ran: boolean;
  removed: number;
  batches: number;
}

/** A scheduled retention pass. */
export interface RetentionPass {
  /** One pass now; `now` (ms) lets tests and tools look into the future. */
  runOnce(now?: number): Promise<PassResult>;
  /** Stops scheduling and waits for a pass in progress to stop after its current batch. */
  close(): Promise<void>;
}

/** Starts the periodic pass (the first one after a random part of the interval). */
export function startRetentionPass(
  retention: RunRetention,
  removal: RunRemoval,
  logger: Logger,
  options: RetentionPassOptions = {},
): RetentionPass {
  const { intervalMs = 600_000, batchSize = 200, lockTtlMs = 60_000 } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError('batchSize must be a positive integer');
  let closed = false;
  let current: Promise<PassResult> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const pass = async (now: number | undefined): Promise<PassResult> => {
    const token = randomBytes(8).toString('hex');
    if (!(await retention.lock(token, lockTtlMs))) return { ran: false, removed: 0, batches: 0 };
    const result: PassResult = { ran: true, removed: 0, batches: 0 };
    try {
      while (!closed) {
        const due = await retention.due(now ?? Date.now(), batchSize);
        if (due.length === 0) break;
        await removal.expire(due);
        result.removed += due.length;
        result.batches++;
        if (!(await retention.extendLock(token, lockTtlMs))) break;
        // Let requests waiting on the event loop go first.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      await retention.unlock(token).catch(() => undefined);
    }
    if (result.removed) logger.info({ removed: result.removed, batches: result.batches }, 'retention pass');
    return result;
  };

  const runOnce = (now?: number): Promise<PassResult> => {
    // One pass at a time in this process too; a second caller shares the one in progress.
    current ??= pass(now).finally(() => {
      current = undefined;
    });
    return current;
  };

  const schedule = (delay: number) => {
    if (closed || intervalMs <= 0) return;
    timer = setTimeout(() => {
      runOnce()
        .catch((err) => logger.warn({ err }, 'retention pass failed'))
        .finally(() => schedule(intervalMs));
    }, delay);
    timer.unref();
  };
  schedule(Math.floor(Math.random() * intervalMs));

  return {
    runOnce,
    async close() {
      closed = true;
      clearTimeout(timer);
      await current?.catch(() => undefined);
    },
  };
}
