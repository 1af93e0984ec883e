/**
 * The worker's heartbeat: what it serves and how busy it is, written every `intervalMs` to the
 * worker registry (live for about three intervals), and removed when the worker stops cleanly.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { WorkerHeartbeat, WorkerRegistry } from '../store/index.ts';
import { conveyorVersion } from '../version.ts';

/** What the worker says of itself in each beat (the rest is this process's own). */
export type Beat = Omit<WorkerHeartbeat, 'lastSeen' | 'host' | 'pid' | 'version' | 'startedAt'>;

/** A running heartbeat. */
export interface Heartbeat {
  /** Stops beating and removes the heartbeat, so the worker disappears from the list at once. */
  stop(): Promise<void>;
}

/** Writes `beat()` now and every `intervalMs`; a failed write is logged and retried next time. */
export async function startHeartbeat(
  registry: WorkerRegistry,
  beat: () => Beat,
  intervalMs: number,
  logger: Logger,
): Promise<Heartbeat> {
  const own = {
    host: hostname(),
    pid: process.pid,
    version: conveyorVersion(),
    startedAt: new Date().toISOString(),
  };
  let writing: Promise<void> | undefined;
  const write = () => {
    writing ??= registry
      .record({ ...beat(), ...own })
      .catch((err) => logger.warn({ err }, 'could not write the heartbeat'))
      .finally(() => {
        writing = undefined;
      });
    return writing;
  };
  await write();
  const timer = setInterval(() => void write(), intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await writing;
      await registry.remove(beat().id).catch((err) => logger.warn({ err }, 'could not remove the heartbeat'));
    },
  };
}
