/** Builds the API's dependencies on one Redis connection and serves the app over HTTP. */
import { type ServerType, serve } from '@hono/node-server';
import { FlowProducer, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { QUEUES } from '../flows/index.ts';
import type { Inventory } from '../inventory/index.ts';
import type { SecretKey } from '../secrets/index.ts';
import { bullPrefix, InventoryStore, RunStore, SecretStore, WorkflowStore } from '../store/index.ts';
import {
  type ScheduleProcessor,
  Schedules,
  startScheduleProcessor,
  type TickData,
} from '../triggers/index.ts';
import type { KnownHosts } from '../workers/ssh/index.ts';
import { createApp } from './app.ts';
import type { ApiDeps } from './context.ts';
import { RunLauncher } from './run-launcher.ts';

/** A started API (or just its app and deps, when `port` is omitted: tests use `app.request`). */
export interface ConveyorApi {
  app: ReturnType<typeof createApp>;
  deps: ApiDeps;
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
  /** Process schedule ticks in this process (every API process does by default). @defaultValue true */
  schedules?: boolean;
}

/** Connects to Redis and builds (and optionally serves) the API. */
export async function startApi(options: ApiOptions): Promise<ConveyorApi> {
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
  const workflows = new WorkflowStore(redis, options.prefix);
  const launcher = new RunLauncher(redis, store, flows, { runs, step });
  const scheduleQueue = new Queue<TickData>(QUEUES.schedule, { connection: redis, prefix });
  // The shared connection's errors reach requests as 503s; unheard, BullMQ would print each one.
  scheduleQueue.on('error', (err) => options.logger.debug({ err }, 'schedules queue error'));
  const schedules = new Schedules(scheduleQueue, workflows);
  const deps: ApiDeps = {
    redis,
    store,
    workflows,
    launcher,
    schedules,
    inventory: new InventoryStore(redis, options.prefix, options.inventoryFile),
    secrets: new SecretStore(redis, options.prefix, options.secretKey),
    knownHosts: options.knownHosts,
    logger: options.logger,
  };
  const app = createApp(deps);
  let ticks: ScheduleProcessor | undefined;
  if (options.schedules ?? true) {
    await schedules.syncAll();
    ticks = await startScheduleProcessor({
      redisUrl: options.redisUrl,
      prefix,
      queue: scheduleQueue,
      workflows,
      launch: (request) => launcher.launch(request),
      logger: options.logger,
    });
  }
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
    server,
    port,
    async close() {
      if (server) {
        // Open SSE streams would keep close() waiting forever.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        await new Promise<void>((resolve) => server!.close(() => resolve()));
      }
      await ticks?.close();
      await Promise.all([
        flows.close(),
        runs.close(),
        scheduleQueue.close(),
        ...[...stepQueues.values()].map((q) => q.close()),
      ]);
      redis.disconnect();
    },
  };
}
