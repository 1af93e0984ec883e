/**
 * Concurrency groups' state (concurrency-group.lua): which run holds a group and which one waits
 * for it. Atomic in Redis, so it holds across any number of API and worker processes.
 */
import type { RedisClient } from '../redis-client.ts';
import type { Keys } from './keys.ts';
import { type ScriptedRedis, withScripts } from './scripts.ts';

/** What `acquire` decided for a new run. */
export type Admission =
  | { start: true; superseded?: string }
  | {
      start: false;
      /** The pending run this one replaced; it was cancelled with a reason. */
      superseded?: string;
      /** The holder, marked for cancellation (`cancelInProgress`): tell its workers. */
      cancel?: string;
      holder: string;
      /** When the holder took the group (ms). */
      heldSince: number;
    };

/** Groups over one Redis connection and prefix. */
export class GroupStore {
  private readonly redis: ScriptedRedis;

  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
  ) {
    this.redis = withScripts(redis);
  }

  private call(op: string, group: string, runId: string, ...rest: string[]): Promise<unknown> {
    return this.redis.concurrencyGroup(
      // Names compare case-insensitively, as GitHub's do: `Prod` and `prod` are one group.
      this.keys.group(group.toLowerCase()),
      op,
      runId,
      Date.now(),
      this.keys.run(''),
      new Date().toISOString(),
      ...rest,
    );
  }

  /** Takes the group for `runId`, or makes it the pending run (replacing an older pending one). */
  async acquire(group: string, runId: string, cancelInProgress: boolean): Promise<Admission> {
    const [outcome, superseded, cancel, holder, since] = (await this.call(
      'acquire',
      group,
      runId,
      cancelInProgress ? '1' : '0',
      group,
    )) as [string, string, string?, string?, string?];
    if (outcome === 'start') return { start: true, ...(superseded && { superseded }) };
    return {
      start: false,
      ...(superseded && { superseded }),
      ...(cancel && { cancel }),
      holder: holder!,
      heldSince: Number(since),
    };
  }

  /**
   * Gives the group up after `runId` ended. `next`: the run that holds it now and must be
   * started; on a repeated release (a retried finaliser) the current holder, which may still
   * need starting.
   */
  async release(group: string, runId: string): Promise<{ released: boolean; next?: string }> {
    const [released, next] = (await this.call('release', group, runId)) as [number, string];
    return { released: released === 1, ...(next && { next }) };
  }

  /** Cancels `runId` if it is the group's pending run; false when it is not. */
  async withdraw(group: string, runId: string, reason: string): Promise<boolean> {
    return (await this.call('withdraw', group, runId, '0', reason)) === 1;
  }
}
