/** What the API's route modules share, built once by `createApp`'s caller. */

import type { Logger } from 'pino';
import type { RedisClient } from '../redis-client.ts';
import type {
  EventFeed,
  InventoryStore,
  RunStore,
  SecretStore,
  WorkerRegistry,
  WorkflowStore,
} from '../store/index.ts';
import type { EventTriggers, Schedules, TriggerLauncher } from '../triggers/index.ts';
import type { KnownHosts } from '../workers/ssh/index.ts';
import type { Drain } from './drain.ts';
import type { QueueSet } from './queues.ts';
import type { RunLauncher } from './run-launcher.ts';
import type { RunRemoval } from './run-removal.ts';

/** The API's dependencies. */
export interface ApiDeps {
  redis: RedisClient;
  store: RunStore;
  /** The one shared reader that serves every open event stream of this process. */
  events: EventFeed;
  /** The graceful stop: open event streams end on its signal with a last comment. */
  drain: Drain;
  workflows: WorkflowStore;
  launcher: RunLauncher;
  /** Deletes finished runs whole (`DELETE /v1/runs/:id`, the retention pass). */
  removal: RunRemoval;
  /** BullMQ job schedulers of `on.schedule`, synced when a workflow is registered or deleted. */
  schedules: Schedules;
  /** The SSH inventory (file + API-managed hosts); validates `hosts:` at submission. */
  inventory: InventoryStore;
  secrets: SecretStore;
  /** Worker heartbeats (`GET /v1/workers`, dry runs' `waiting`). */
  workers: WorkerRegistry;
  /** Every Conveyor queue, for the dashboard and `/metrics`. */
  queues: QueueSet;
  /** Entries of `CONVEYOR_KNOWN_HOSTS`, for preflight checks. */
  knownHosts?: KnownHosts;
  logger: Logger;
  /** Starts the workflows a push or an event matches. */
  triggers: TriggerLauncher;
  /** Starts the workflows an event (posted, or emitted by a step) is for. */
  eventTriggers: EventTriggers;
  /** `CONVEYOR_WEBHOOK_SECRET`: secrets any webhook may be signed with (several during a rotation). */
  webhookSecrets: readonly string[];
}
