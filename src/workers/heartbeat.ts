/**
 * The worker's heartbeat (src/store/worker-registry.ts): what it serves and how many of its step
 * slots are busy, written at start, every `intervalMs`, and removed when it stops. A worker that
 * dies stops writing and its entry expires after three intervals.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { WorkerHeartbeat, WorkerRegistry } from '../store/index.ts';
import { conveyorVersion } from '../version.ts';

/** What the heartbeat says about its worker. */
export interface HeartbeatOptions {
  executors: string[];
  tags: string[];
  concurrency: number;
  /** @defaultValue 5000 */
  intervalMs?: number;
  logger: Logger;
}

/** A BullMQ processor: job, lock token, abort signal. */
type StepProcessorFn<J, R> = (job: J, token?: string, signal?: AbortSignal) => Promise<R>;

/** A running heartbeat. */
export interface Heartbeat {
  id: string;
  /**
   * Wraps a step processor of `executor` so its running jobs count as busy slots. The wrapper
   * declares all three parameters: BullMQ passes the abort signal of `cancelJob` (shutdown, lost
   * lock) only to a processor whose `length` is at least 3.
   */
  track<J, R>(executor: string, processor: StepProcessorFn<J, R>): StepProcessorFn<J, R>;
  /** Writes one heartbeat now. */
  beat(): Promise<void>;
  /** Stops beating and removes the entry. */
  stop(): Promise<void>;
}

/** Starts beating at once (the first write is awaited, so a started worker is listed). */
export async function startHeartbeat(
  registry: WorkerRegistry,
  options: HeartbeatOptions,
): Promise<Heartbeat> {
  const intervalMs = options.intervalMs ?? 5000;
  const host = hostname();
  const id = `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const startedAt = new Date().toISOString();
  const busy = Object.fromEntries(options.executors.map((e) => [e, 0]));
  const beat = async () => {
    const heartbeat: WorkerHeartbeat = {
      id,
      host,
      pid: process.pid,
      executors: options.executors,
      tags: options.tags,
      concurrency: options.concurrency,
      busy: { ...busy },
      version: conveyorVersion(),
      startedAt,
      lastSeen: new Date().toISOString(),
      ttlMs: intervalMs * 3,
    };
    await registry.record(heartbeat);
  };
  await beat();
  const timer = setInterval(() => {
    beat().catch((err) => options.logger.warn({ err }, 'could not write the worker heartbeat'));
  }, intervalMs);
  timer.unref();
  return {
    id,
    beat,
    track(executor, processor) {
      return async (job, token, signal) => {
        busy[executor] = (busy[executor] ?? 0) + 1;
        try {
          return await processor(job, token, signal);
        } finally {
          busy[executor] = (busy[executor] ?? 1) - 1;
        }
      };
    },
    async stop() {
      clearInterval(timer);
      await registry.remove(id).catch(() => {});
    },
  };
}
