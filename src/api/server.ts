/** Builds the API's dependencies on one Redis connection and serves the app over HTTP. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import { FlowProducer, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { QUEUES } from '../flows/index.ts';
import type { Inventory } from '../inventory/index.ts';
import { logConnectionErrors } from '../redis-wait.ts';
import type { SecretKey } from '../secrets/index.ts';
import {
  bullPrefix,
  EventFeed,
  InventoryStore,
  RunStore,
  SecretStore,
  WorkflowStore,
} from '../store/index.ts';
import type { KnownHosts } from '../workers/ssh/index.ts';
import { createApp } from './app.ts';
import { type ApiToken, checkExposure } from './auth/index.ts';
import { answerClientErrors } from './client-errors.ts';
import type { ApiDeps } from './context.ts';
import { QueueSet } from './queues.ts';
import { RunLauncher } from './run-launcher.ts';

/** A started API (or just its app and deps, when `port` is omitted: tests use `app.request`). */
export interface ConveyorApi {
  app: ReturnType<typeof createApp>;
  deps: ApiDeps;
  server?: ServerType;
  port?: number;
  /** The address actually bound (`127.0.0.1`, `::`, …), when listening. */
  address?: string;
  /** `http://host:port` of the bound address, when listening. */
  url?: string;
  close(): Promise<void>;
}

/** Options of the API. */
export interface ApiOptions {
  redisUrl: string;
  prefix: string;
  /** Listen on this port (0: any free port); omit to only build the app. */
  port?: number;
  /** Address to listen on. @defaultValue '127.0.0.1' */
  host?: string;
  /** API tokens (`CONVEYOR_API_TOKENS`); none = no authentication, only on a loopback bind. */
  tokens?: readonly ApiToken[];
  /** `CONVEYOR_ALLOW_ANONYMOUS`: allow a non-loopback bind without tokens. @defaultValue false */
  allowAnonymous?: boolean;
  logger: Logger;
  /** Hosts from the `CONVEYOR_INVENTORY` file. */
  inventoryFile?: Inventory;
  /** `CONVEYOR_SECRET_KEY`; without it secrets cannot be stored. */
  secretKey?: SecretKey;
  /** `CONVEYOR_KNOWN_HOSTS`, for preflight checks. */
  knownHosts?: KnownHosts;
}

/** Connects to Redis and builds (and optionally serves) the API. */
export async function startApi(options: ApiOptions): Promise<ConveyorApi> {
  const host = options.host ?? '127.0.0.1';
  const tokens = options.tokens ?? [];
  // Before anything connects: an exposed API without tokens must not start at all.
  const anonymous =
    options.port !== undefined && checkExposure(host, tokens.length, !!options.allowAnonymous);
  // No offline queue: while Redis is down, requests fail at once with 503 instead of hanging.
  const redis = new Redis(options.redisUrl, {
    enableOfflineQueue: false,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  logConnectionErrors(redis, options.logger, 'api');
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
  const deps: ApiDeps = {
    redis,
    store,
    events: new EventFeed(redis, store.keys),
    workflows: new WorkflowStore(redis, options.prefix),
    launcher: new RunLauncher(redis, store, flows, { runs, step }),
    inventory: new InventoryStore(redis, options.prefix, options.inventoryFile),
    secrets: new SecretStore(redis, options.prefix, options.secretKey),
    queues: new QueueSet(redis, prefix),
    knownHosts: options.knownHosts,
    logger: options.logger,
  };
  const closeAll = async () => {
    await deps.events.close();
    await Promise.all([
      deps.launcher.close(),
      flows.close(),
      runs.close(),
      deps.queues.close(),
      ...[...stepQueues.values()].map((q) => q.close()),
    ]);
    redis.disconnect();
  };
  const app = createApp(deps, { tokens });
  let server: ServerType | undefined;
  let bound: AddressInfo | undefined;
  let url: string | undefined;
  if (options.port !== undefined) {
    bound = await new Promise<AddressInfo>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: options.port, hostname: host }, (info) => resolve(info));
      s.once('error', reject);
      answerClientErrors(s as Server);
      server = s;
    }).catch(async (err) => {
      await closeAll();
      throw err;
    });
    url = `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
    options.logger.info({ address: bound.address, port: bound.port }, `API listening on ${url}`);
    if (anonymous) {
      options.logger.warn(
        'CONVEYOR_API_TOKENS is not set: the API accepts every request from this machine (set tokens before exposing it)',
      );
    }
  }
  return {
    app,
    deps,
    server,
    port: bound?.port,
    address: bound?.address,
    url,
    async close() {
      if (server) {
        // Open SSE streams would keep close() waiting forever.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        await new Promise<void>((resolve) => server!.close(() => resolve()));
      }
      await closeAll();
    },
  };
}
