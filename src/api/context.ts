/** What the API's route modules share, built once by `createApp`'s caller. */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { EventFeed, InventoryStore, RunStore, SecretStore, WorkflowStore } from '../store/index.ts';
import type { KnownHosts } from '../workers/ssh/index.ts';
import type { QueueSet } from './queues.ts';
import type { RunLauncher } from './run-launcher.ts';

/** The API's dependencies. */
export interface ApiDeps {
  redis: Redis;
  store: RunStore;
  /** The one shared reader that serves every open event stream of this process. */
  events: EventFeed;
  workflows: WorkflowStore;
  launcher: RunLauncher;
  /** The SSH inventory (file + API-managed hosts); validates `hosts:` at submission. */
  inventory: InventoryStore;
  secrets: SecretStore;
  /** Every Conveyor queue, for the dashboard and `/metrics`. */
  queues: QueueSet;
  /** Entries of `CONVEYOR_KNOWN_HOSTS`, for preflight checks. */
  knownHosts?: KnownHosts;
  logger: Logger;
}
