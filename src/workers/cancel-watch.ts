/**
 * Delivers cancel requests (and news of ended runs) to this worker: at once through Redis pub/sub,
 * and, in case a message was missed while the connection was down, by polling the cancel flag of
 * runs that have steps running here.
 */

import type { Logger } from 'pino';
import { duplicateRedis, type RedisClient } from '../redis-client.ts';
import type { RunStore } from '../store/index.ts';

/** Options of the watcher. */
export interface CancelWatchOptions {
  /** How often running runs' flags are re-read. @defaultValue 2000 */
  pollMs: number;
  /** Called when a run ended anywhere (its finaliser announced it). */
  onRunEnded?: (runId: string) => void;
}

/** One worker's cancel watcher. */
export class CancelWatch {
  private readonly listeners = new Map<string, Set<() => void>>();
  private readonly subscriber: RedisClient;
  private readonly poller: NodeJS.Timeout;

  constructor(
    redis: RedisClient,
    private readonly store: RunStore,
    private readonly logger: Logger,
    options: Partial<CancelWatchOptions> = {},
  ) {
    const { pollMs, onRunEnded } = { pollMs: 2000, ...options };
    const ended = store.keys.endedChannel();
    this.subscriber = duplicateRedis(redis);
    this.subscriber.on('message', (channel: string, runId: string) => {
      if (channel === ended) onRunEnded?.(runId);
      else this.fire(runId);
    });
    this.subscriber.on('error', (err) => this.logger.warn({ err }, 'cancel subscriber error'));
    void this.subscriber
      .subscribe(store.keys.cancelChannel(), ...(onRunEnded ? [ended] : []))
      .catch((err) => this.logger.warn({ err }, 'cancel subscribe failed'));
    this.poller = setInterval(() => void this.poll(), pollMs);
    this.poller.unref();
  }

  /**
   * Calls `onCancel` when `key` (a run id, or `<run>/<step>` for a fail-fast step) is cancelled
   * while the returned function has not been called.
   */
  watch(runId: string, onCancel: () => void): () => void {
    let set = this.listeners.get(runId);
    if (!set) {
      set = new Set();
      this.listeners.set(runId, set);
    }
    set.add(onCancel);
    return () => {
      set.delete(onCancel);
      if (set.size === 0) this.listeners.delete(runId);
    };
  }

  private fire(runId: string): void {
    for (const listener of this.listeners.get(runId) ?? []) listener();
  }

  private async poll(): Promise<void> {
    for (const runId of this.listeners.keys()) {
      if (runId.includes('/')) continue; // a fail-fast key: pub/sub only, pending instances check the flag
      try {
        const snapshot = await this.store.snapshot(runId, [], false);
        if (snapshot.cancelRequested) this.fire(runId);
      } catch (err) {
        this.logger.debug({ err, runId }, 'cancel poll failed');
      }
    }
  }

  /** Stops listening. */
  async close(): Promise<void> {
    clearInterval(this.poller);
    this.subscriber.disconnect();
  }
}
