/** What the API's route modules share, built once by `createApp`'s caller. */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { InventoryStore, RunStore, SecretStore, WorkflowStore } from '../store/index.ts';
import type { Schedules } from '../triggers/index.ts';
import type { KnownHosts } from '../workers/ssh/index.ts';
import type { RunLauncher } from './run-launcher.ts';

/** The API's dependencies. */
export interface ApiDeps {
  redis: Redis;
  store: RunStore;
  workflows: WorkflowStore;
  launcher: RunLauncher;
  /** BullMQ job schedulers of `on.schedule`, synced when a workflow is registered or deleted. */
  schedules: Schedules;
  /** The SSH inventory (file + API-managed hosts); validates `hosts:` at submission. */
  inventory: InventoryStore;
  secrets: SecretStore;
  /** Entries of `CONVEYOR_KNOWN_HOSTS`, for preflight checks. */
  knownHosts?: KnownHosts;
  logger: Logger;
}
