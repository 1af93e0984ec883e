/** Registered workflow definitions and their versions. */

import { digestOf, type Workflow } from '../flows/index.ts';
import type { RedisClient } from '../redis-client.ts';
import { type Keys, keys } from './keys.ts';
import { type ScriptedRedis, withScripts } from './scripts.ts';

/** One stored version: the definition as sent (normalised JSON) and its validated form. */
export interface WorkflowVersion {
  name: string;
  version: number;
  createdAt: string;
  definition: unknown;
  workflow: Workflow;
}

/** Workflow registry over one Redis connection and prefix. */
export class WorkflowStore {
  private readonly keys: Keys;
  private readonly redis: ScriptedRedis;

  constructor(redis: RedisClient, prefix: string) {
    this.redis = withScripts(redis);
    this.keys = keys(prefix);
  }

  /** Stores a new version, or returns the latest when the definition is identical to it. */
  async register(definition: unknown, workflow: Workflow): Promise<{ version: number; created: boolean }> {
    const hash = digestOf(definition);
    const stored = JSON.stringify({ createdAt: new Date().toISOString(), definition, workflow });
    const [version, created] = (await this.redis.registerWorkflow(
      this.keys.workflow(workflow.name),
      this.keys.workflows(),
      this.keys.workflowSeq(workflow.name),
      hash,
      stored,
      workflow.name,
    )) as [number, number];
    return { version, created: created === 1 };
  }

  /** The number of a workflow's latest version, or undefined when it has none. */
  async latestVersion(name: string): Promise<number | undefined> {
    return Number(await this.redis.hget(this.keys.workflow(name), 'latest')) || undefined;
  }

  /** A version (the latest when `version` is omitted), or undefined. */
  async get(name: string, version?: number): Promise<WorkflowVersion | undefined> {
    const key = this.keys.workflow(name);
    const n = version ?? Number(await this.redis.hget(key, 'latest'));
    if (!n) return undefined;
    const raw = await this.redis.hget(key, `v:${n}`);
    if (!raw) return undefined;
    const stored = JSON.parse(raw) as Omit<WorkflowVersion, 'name' | 'version'>;
    return { name, version: n, ...stored };
  }

  /** Names with their latest version, sorted by name. */
  async list(): Promise<Array<{ name: string; version: number; description?: string }>> {
    const names = (await this.redis.smembers(this.keys.workflows())).sort();
    const out = [];
    for (const name of names) {
      const latest = await this.get(name);
      if (latest) out.push({ name, version: latest.version, description: latest.workflow.description });
    }
    return out;
  }

  /** The latest version of every registered workflow (what triggers match against), in two round trips. */
  async latestVersions(): Promise<WorkflowVersion[]> {
    const names = await this.redis.smembers(this.keys.workflows());
    if (names.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const name of names) pipeline.hget(this.keys.workflow(name), 'latest');
    const numbers = ((await pipeline.exec()) ?? []).map(([, n]) => Number(n));
    const reads = this.redis.pipeline();
    names.forEach((name, i) => reads.hget(this.keys.workflow(name), `v:${numbers[i]}`));
    const raws = (await reads.exec()) ?? [];
    const out: WorkflowVersion[] = [];
    names.forEach((name, i) => {
      const raw = raws[i]?.[1];
      if (typeof raw !== 'string' || !numbers[i]) return;
      const stored = JSON.parse(raw) as Omit<WorkflowVersion, 'name' | 'version'>;
      out.push({ name, version: numbers[i]!, ...stored });
    });
    return out;
  }

  /**
   * Removes every version of a workflow; false when there was none. Runs keep their snapshot,
   * and the version counter stays, so registering the name again continues after the last number.
   */
  async delete(name: string): Promise<boolean> {
    const [[, removed]] = (await this.redis
      .multi()
      .del(this.keys.workflow(name))
      .srem(this.keys.workflows(), name)
      .exec()) as [[unknown, number], [unknown, number]];
    return removed === 1;
  }
}
