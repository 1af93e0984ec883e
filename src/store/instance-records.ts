/**
 * The host-instance records of fan-out steps: the `i:<step>@<host>` fields of the run hash, the
 * step's fail-fast flag, and each instance attempt's log (`RunStore.appendLog` writes it). Apart
 * from the step records because each instance moves on its own (transition-instance.lua), with
 * its own attempts, while the step that fanned out waits for them.
 */

import type { Keys } from './keys.ts';
import type { EventInput, InstanceView } from './run-types.ts';
import type { ScriptedRedis } from './scripts.ts';

/** The instance records of fan-out steps, reached as `RunStore.instances`. */
export class InstanceRecords {
  constructor(
    private readonly redis: ScriptedRedis,
    private readonly keys: Keys,
  ) {}

  /**
   * Moves a host instance of a fan-out step. Moving to `running` begins an attempt: the result
   * is its number, or `'interrupted'` when the instance's workers died more than
   * `maxInterruptions` times. Otherwise true when applied, false when nothing was written
   * (already final, or `attempt` is stale).
   */
  async transition(
    runId: string,
    stepId: string,
    host: string,
    instance: InstanceView,
    event: EventInput | undefined,
    options: { attempt?: number; maxInterruptions?: number } = {},
  ): Promise<number | boolean | 'interrupted'> {
    const at = new Date().toISOString();
    const result = (await this.redis.transitionInstance(
      this.keys.run(runId),
      this.keys.events(runId),
      `${stepId}@${host}`,
      instance.status,
      JSON.stringify(instance),
      event ? JSON.stringify({ runId, at, ...event }) : '',
      event?.type ?? '',
      options.attempt === undefined ? '' : String(options.attempt),
      options.maxInterruptions ?? 0,
      `${runId}|${stepId}|${host}|${at}`,
    )) as number;
    if (result === -1) throw new Error(`run ${runId} has no record`);
    if (result === -2) return 'interrupted';
    if (instance.status === 'running') return result;
    return result === 1;
  }

  /** The instances of a fan-out step, by host (hosts without a record are absent). */
  async get(runId: string, stepId: string, hosts: string[]): Promise<Record<string, InstanceView>> {
    if (hosts.length === 0) return {};
    const values = await this.redis.hmget(this.keys.run(runId), ...hosts.map((h) => `i:${stepId}@${h}`));
    const out: Record<string, InstanceView> = {};
    hosts.forEach((host, i) => {
      if (values[i]) out[host] = JSON.parse(values[i]!) as InstanceView;
    });
    return out;
  }

  /**
   * Every instance record of a step, whatever host list its details hold now: for a step that
   * ends without its fan-out (its earlier attempts' hosts). Scans the run hash: for rare paths.
   */
  async all(runId: string, stepId: string): Promise<Record<string, InstanceView>> {
    const out: Record<string, InstanceView> = {};
    const field = `i:${stepId}@`;
    let cursor = '0';
    do {
      const [next, page] = await this.redis.hscan(
        this.keys.run(runId),
        cursor,
        'MATCH',
        `${field}*`,
        'COUNT',
        1000,
      );
      cursor = next;
      for (let i = 0; i < page.length; i += 2)
        out[page[i]!.slice(field.length)] = JSON.parse(page[i + 1]!) as InstanceView;
    } while (cursor !== '0');
    return out;
  }

  /** Marks a fan-out step failed-fast (its pending instances will not start) and tells workers. */
  async failFast(runId: string, stepId: string): Promise<void> {
    await this.redis.hset(this.keys.run(runId), `ff:${stepId}`, '1');
    await this.redis.publish(this.keys.cancelChannel(), `${runId}/${stepId}`);
  }

  /** True when a fan-out step was failed-fast. */
  async isFailedFast(runId: string, stepId: string): Promise<boolean> {
    return (await this.redis.hget(this.keys.run(runId), `ff:${stepId}`)) === '1';
  }

  /** The stored log text of one attempt of a host instance. */
  async getLog(runId: string, stepId: string, host: string, attempt: number): Promise<string> {
    return (await this.redis.get(this.keys.instanceLog(runId, stepId, host, attempt))) ?? '';
  }
}
