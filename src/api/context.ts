/** What the API's route modules share, built once by `createApp`'s caller. */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HostCatalog } from '../flows/index.ts';
import type { RunStore, WorkflowStore } from '../store/index.ts';
import type { RunLauncher } from './run-launcher.ts';

/** The API's dependencies. */
export interface ApiDeps {
  redis: Redis;
  store: RunStore;
  workflows: WorkflowStore;
  launcher: RunLauncher;
  /** The SSH inventory, for validating `hosts` (absent: no inventory). */
  hosts?: HostCatalog;
  logger: Logger;
}
