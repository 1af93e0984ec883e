/** Builds the API's dependencies on one Redis connection and serves the app over HTTP. */
import { type ServerType, serve } from '@hono/node-server';
import { FlowProducer, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { QUEUES } from '../flows/index.ts';
import type { Inventory } from '../inventory/index.ts';
import type { SecretKey } from '../secrets/index.ts';
import {
  bullPrefix,
  InventoryStore,
  RunRetention,
  RunStore,
  SecretStore,
  WorkflowStore,
} from '../store/index.ts';
import type { KnownHosts } from '../workers/ssh/index.ts';
import { createApp } from './app.ts';
import type { ApiDeps } from './context.ts';
import { type RetentionPass, type RetentionPassOptions, startRetentionPass } from './retention-pass.ts';
import { RunLauncher } from './run-launcher.ts';
import { RunRemoval } from './run-removal.ts';

/** A started API (or just its app and deps, when `port` is omitted: tests use `app.request`). */
export interface ConveyorApi {
  app: ReturnType<typeof createApp>;
  deps: ApiDeps;
  /** The retention pass of this process (tests call `runOnce` with a future `now`). */
  retention: RetentionPass;
  server?: ServerType;
  port?: number;
  close(): Promise<void>;
}

/** Options of the API. */
export interface ApiOptions {
  redisUrl: string;
  prefix: string;
  /** Listen on this port (0: any free port); omit to only build the app. */
  port?: number;
  logger: Logger;
  /** Hosts from the `CONVEYOR_INVENTORY` file. */
  inventoryFile?: Inventory;
  /** `CONVEYOR_SECRET_KEY`; without it secrets cannot be stored. */
  secretKey?: SecretKey;
  /** `CONVEYOR_KNOWN_HOSTS`, for preflight checks. */
  knownHosts?: KnownHosts;
  /** Seconds a finished run is kept (`CONVEYOR_RETENTION_DAYS` × 86400). @defaultValue 14 days */
  retentionSeconds?: number;
  /** Tuning of the retention pass (interval, batch size, lock TTL). */
  retentionPass?: RetentionPassOptions;
}

/** The default retention: 14 days. */
export const DEFAULT_RETENTION_SECONDS = 14 * 86_400;

/** Connects to Redis and builds (and optionally serves) the API. */
export async function startApi(options: ApiOptions): Promise<ConveyorApi> {
  const retentionSeconds = options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS;
  // Redis EXPIRE and BullMQ ages take whole seconds.
  if (!Number.isInteger(retentionSeconds) || retentionSeconds < 1)
    throw new RangeError(`retentionSeconds must be a positive integer, got ${retentionSeconds}`);
  // No offline queue: while Redis is down, requests fail at once with 503 instead of hanging.
  const redis = new Redis(options.redisUrl, {
    enableOfflineQueue: false,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  await redis.connect();
  const prefix = bullPrefix(options.prefix);
  const flows = new FlowProducer({ connection: redis, prefix });
  const runs = new Queue(QUEUES.run, { connection: redis, prefix });
  const gates = new Queue(QUEUES.gate, { connection: redis, prefix });
  const stepQueues = new Map<string, Queue>();
  const step = (executor: string) => {
    let queue = stepQueues.get(executor);
    if (!queue) {
      queue = new Queue(QUEUES.step(executor), { connection: redis, prefix });
      stepQueues.set(executor, queue);
    }
    return queue;
  };
  const store = new RunStore(redis, options.prefix);
  const retentionStore = new RunRetention(redis, options.prefix);
  const removal = new RunRemoval(store, retentionStore, { runs, gates, step });
  const deps: ApiDeps = {
    redis,
    store,
    workflows: new WorkflowStore(redis, options.prefix),
    launcher: new RunLauncher(redis, store, flows, { runs, step }, retentionSeconds),
    removal,
    inventory: new InventoryStore(redis, options.prefix, options.inventoryFile),
    secrets: new SecretStore(redis, options.prefix, options.secretKey),
    knownHosts: options.knownHosts,
    logger: options.logger,
  };
  const app = createApp(deps);
  const retention = startRetentionPass(retentionStore, removal, options.logger, options.retentionPass);
  let server: ServerType | undefined;
  let port: number | undefined;
  if (options.port !== undefined) {
    port = await new Promise<number>((resolve) => {
      server = serve({ fetch: app.fetch, port: options.port, hostname: '0.0.0.0' }, (info) =>
        resolve(info.port),
      );
    });
  }
  return {
    app,
    deps,
    retention,
    server,
    port,
    async close() {
      await retention.close();
      if (server) {
        // Open SSE streams would keep close() waiting forever.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        await new Promise<void>((resolve) => server!.close(() => resolve()));
      }
      await Promise.all([
        flows.close(),
        runs.close(),
        gates.close(),
        ...[...stepQueues.values()].map((q) => q.close()),
      ]);
      redis.disconnect();
    },
  };
}
