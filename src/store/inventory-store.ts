/**
 * The SSH inventory: hosts from the `CONVEYOR_INVENTORY` file (read-only) merged with hosts
 * managed through `PUT/DELETE /v1/hosts/:name` (stored in Redis; they win on a name clash).
 */

import { ConflictError, ValidationError } from '../errors.ts';
import type { HostCatalog } from '../flows/index.ts';
import {
  checkInventory,
  type HostEntry,
  type Inventory,
  parseHostEntry,
  resolveTargets,
} from '../inventory/index.ts';
import type { RedisClient } from '../redis-client.ts';
import { type Keys, keys } from './keys.ts';

/** Inventory over Redis plus an optional file inventory. */
export class InventoryStore {
  private readonly keys: Keys;
  private last: { at: number; loading: Promise<Inventory> } | undefined;

  /**
   * `reuseMs`: a `load` that starts within this many milliseconds of the previous one gets that
   * one's answer (a worker's fan-out and its SSH executor look a step's host up one after the
   * other: one read serves both). 0 reads every time.
   */
  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly file: Inventory = { hosts: {} },
    private readonly reuseMs = 0,
  ) {
    this.keys = keys(prefix);
  }

  /** The merged inventory. */
  load(): Promise<Inventory> {
    const now = performance.now();
    if (this.last && now - this.last.at < this.reuseMs) return this.last.loading;
    const loading = this.read();
    this.last = { at: now, loading };
    // A failed read is not reused.
    loading.catch(() => {
      if (this.last?.loading === loading) this.last = undefined;
    });
    return loading;
  }

  private async read(): Promise<Inventory> {
    const stored = await this.redis.hgetall(this.keys.hosts());
    const hosts: Record<string, HostEntry> = { ...this.file.hosts };
    for (const [name, json] of Object.entries(stored)) hosts[name] = JSON.parse(json) as HostEntry;
    return { hosts };
  }

  /**
   * Resolves `hosts:` names (host, group or `all`) to host names, sorted by name: the order of a
   * dry-run plan, of fan-out lanes and of a run document's instances.
   */
  async catalog(): Promise<HostCatalog> {
    const inventory = await this.load();
    return { resolve: (name) => resolveTargets(inventory, name)?.sort() };
  }

  async get(name: string): Promise<HostEntry | undefined> {
    const json = await this.redis.hget(this.keys.hosts(), name);
    if (json) return JSON.parse(json) as HostEntry;
    // Own entries only: a host named `constructor` is not Object's.
    return Object.hasOwn(this.file.hosts, name) ? this.file.hosts[name] : undefined;
  }

  /**
   * Creates or replaces a host; returns true when it is new. `entry` is validated here, and so is
   * the inventory it makes (a name used for a host and a group, a missing or looping jump host).
   */
  async put(name: string, entry: unknown): Promise<{ host: HostEntry; created: boolean }> {
    const host = parseHostEntry(entry);
    const { hosts } = await this.load();
    const issues = checkInventory({ ...hosts, [name]: host });
    if (issues.length)
      throw new ValidationError(`host "${name}" would make the inventory inconsistent`, issues);
    const created = (await this.redis.hset(this.keys.hosts(), name, JSON.stringify(host))) === 1;
    return { host, created: created && !this.file.hosts[name] };
  }

  /** Removes an API-managed host; a host only in the file cannot be removed here. */
  async delete(name: string): Promise<boolean> {
    const removed = (await this.redis.hdel(this.keys.hosts(), name)) === 1;
    if (!removed && this.file.hosts[name]) {
      throw new ConflictError(
        `host "${name}" comes from the CONVEYOR_INVENTORY file: edit the file to remove it`,
      );
    }
    return removed;
  }

  /** Trust on first use: records the key a host presented, unless a key is already known. */
  async recordHostKey(name: string, keyLine: string): Promise<void> {
    const host = await this.get(name);
    if (!host || host.hostKey) return;
    await this.redis.hset(this.keys.hosts(), name, JSON.stringify({ ...host, hostKey: keyLine }));
  }
}
