/** Registered workflow definitions and their versions. */

import type { ChainableCommander } from 'ioredis';
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

/**
 * What readers that need no steps get of a version (`GET /v1/workflows`, trigger matching):
 * stored beside the version as `s:<n>`, a few hundred bytes for a typical definition whatever
 * its number of steps, and at most about 72 KiB (`LIMITS.triggersBytes` for `on`,
 * `LIMITS.descriptionBytes` for `description`).
 */
export interface WorkflowSummary {
  name: string;
  version: number;
  createdAt: string;
  description?: string;
  /** The triggers, as validated: what push, event and schedule matching read. */
  on?: Workflow['on'];
  /** Number of steps. */
  steps: number;
}

/** A workflow's summary, without its version (given by the registration script). */
export function summarise(workflow: Workflow, createdAt: string): Omit<WorkflowSummary, 'version'> {
  return {
    name: workflow.name,
    createdAt,
    description: workflow.description,
    on: workflow.on,
    steps: workflow.order.length,
  };
}

/** A pipeline with the scripts this store sends pipelined. */
type ScriptedPipeline = ChainableCommander & {
  latestSummary(key: string): ChainableCommander;
  storeSummary(key: string, version: number, summary: string): ChainableCommander;
};

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
    const createdAt = new Date().toISOString();
    const stored = JSON.stringify({ createdAt, definition, workflow });
    const [version, created] = (await this.redis.registerWorkflow(
      this.keys.workflow(workflow.name),
      this.keys.workflows(),
      this.keys.workflowSeq(workflow.name),
      hash,
      stored,
      workflow.name,
      JSON.stringify(summarise(workflow, createdAt)),
    )) as [number, number];
    return { version, created: created === 1 };
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

  /** Names with their latest version and description, sorted by name; read from the summaries. */
  async list(): Promise<Array<{ name: string; version: number; description?: string }>> {
    return (await this.latestSummaries()).map(({ name, version, description }) => ({
      name,
      version,
      description,
    }));
  }

  /** The summary of a workflow's latest version, or undefined when it has none. */
  async latestSummary(name: string): Promise<WorkflowSummary | undefined> {
    return (await this.summariesOf([name]))[0];
  }

  /**
   * The summary of every registered workflow's latest version, sorted by name: what the listing
   * and trigger matching read, in two round trips whatever the definitions' sizes.
   */
  async latestSummaries(): Promise<WorkflowSummary[]> {
    return this.summariesOf((await this.redis.smembers(this.keys.workflows())).sort());
  }

  private async summariesOf(names: string[]): Promise<WorkflowSummary[]> {
    if (names.length === 0) return [];
    const pipeline = this.redis.pipeline() as ScriptedPipeline;
    for (const name of names) pipeline.latestSummary(this.keys.workflow(name));
    const replies = (await pipeline.exec()) ?? [];
    const found = names.map((name, i) => {
      const [err, reply] = replies[i] ?? [];
      if (err) throw err;
      const [latest, summary] = reply as [string | null, string | null];
      return { name, version: Number(latest), summary };
    });
    const missing = found.filter((f) => f.version && f.summary === null);
    const built = missing.length ? await this.buildSummaries(missing) : new Map<string, WorkflowSummary>();
    const out: WorkflowSummary[] = [];
    for (const { name, version, summary } of found) {
      if (!version) continue; // deleted since SMEMBERS
      const parsed =
        summary === null ? built.get(name) : ({ ...JSON.parse(summary), name } as WorkflowSummary);
      if (parsed) out.push(parsed);
    }
    return out;
  }

  /**
   * Summaries of versions stored before summaries were, built from the whole version and written
   * back: each such version is parsed once after an upgrade, not on every webhook, list or event
   * (the reason to write back at all). The script writes only while the version exists, so a
   * DELETE meanwhile leaves no hash behind.
   */
  private async buildSummaries(versions: Array<{ name: string; version: number }>) {
    const reads = this.redis.pipeline();
    for (const { name, version } of versions) reads.hget(this.keys.workflow(name), `v:${version}`);
    const raws = (await reads.exec()) ?? [];
    const built = new Map<string, WorkflowSummary>();
    const writes = this.redis.pipeline() as ScriptedPipeline;
    versions.forEach(({ name, version }, i) => {
      const raw = raws[i]?.[1];
      if (typeof raw !== 'string') return; // deleted meanwhile
      const stored = JSON.parse(raw) as Pick<WorkflowVersion, 'createdAt' | 'workflow'>;
      const summary = { version, ...summarise(stored.workflow, stored.createdAt) };
      built.set(name, summary);
      writes.storeSummary(this.keys.workflow(name), version, JSON.stringify(summary));
    });
    for (const [err] of (await writes.exec()) ?? []) if (err) throw err;
    return built;
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
