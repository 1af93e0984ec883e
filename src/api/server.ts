/** Builds the API's dependencies on one Redis connection and serves the app over HTTP. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { createAdaptorServer, type ServerType } from '@hono/node-server';
import { FlowProducer, Queue } from 'bullmq';
import type { Logger } from 'pino';
import { allowDeepFlows } from '../flows/deep-flows.ts';
import { QUEUES } from '../flows/index.ts';
import type { Inventory } from '../inventory/index.ts';
import { openRedis, type RedisNode, type RedisTarget } from '../redis-client.ts';
import { logConnectionErrors } from '../redis-wait.ts';
import type { SecretKey } from '../secrets/index.ts';
import {
  bullPrefix,
  EventFeed,
  InventoryStore,
  RunRetention,
  RunStore,
  SecretStore,
  TriggerStore,
  WorkerRegistry,
  WorkflowStore,
} from '../store/index.ts';
import {
  type EventBusConsumer,
  EventTriggers,
  type ScheduleProcessor,
  Schedules,
  startEventBus,
  startScheduleProcessor,
  type TickData,
  TriggerLauncher,
} from '../triggers/index.ts';
import type { KnownHosts } from '../workers/ssh/index.ts';
import { WaitingCheck } from '../workers/waiting-check.ts';
import { createApp } from './app.ts';
import { type ApiToken, checkExposure } from './auth/index.ts';
import { answerClientErrors } from './client-errors.ts';
import type { ApiDeps } from './context.ts';
import { Drain } from './drain.ts';
import type { CorsOrigins, RateLimitOptions } from './middleware/index.ts';
import { QueueSet } from './queues.ts';
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
  /** The address actually bound (`127.0.0.1`, `::`, …), when listening. */
  address?: string;
  /** `http://host:port` of the bound address, when listening. */
  url?: string;
  close(): Promise<void>;
}

/** Options of the API. */
export interface ApiOptions {
  /** Redis; in cluster mode only its credentials and scheme count. */
  redisUrl: string;
  /** `REDIS_CLUSTER_NODES`: seed nodes of a Redis Cluster (unset: the Redis at `redisUrl`). */
  redisCluster?: readonly RedisNode[];
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
  /** Seconds a finished run is kept (`CONVEYOR_RETENTION_DAYS` × 86400). @defaultValue 14 days */
  retentionSeconds?: number;
  /** Tuning of the retention pass (interval, batch size, lock TTL). */
  retentionPass?: RetentionPassOptions;
  /** `CONVEYOR_WEBHOOK_SECRET`, split. */
  webhookSecrets?: readonly string[];
  /** Start workflows from events steps emit (the bus consumer group). @defaultValue true */
  consumeEvents?: boolean;
  /** Process schedule ticks in this process (every API process does by default). @defaultValue true */
  schedules?: boolean;
  /** `CONVEYOR_CORS_ORIGINS`. @defaultValue no CORS */
  corsOrigins?: CorsOrigins;
  /** `CONVEYOR_RATE_LIMIT` (main.ts passes its default, 600/min). @defaultValue no limit */
  rateLimit?: RateLimitOptions;
}

/**
 * Connections the kernel queues for the API while its event loop accepts them (Node's default is
 * 511; Linux caps it at `net.core.somaxconn`). A surge of clients, such as thousands of SSE
 * streams reconnecting after an API restart, then waits in the queue instead of being dropped or
 * reset.
 */
const LISTEN_BACKLOG = 4096;

/** How long a stop waits for open event streams to write their last comment and end. */
const STREAM_DRAIN_MS = 2000;

/** The default retention: 14 days. */
export const DEFAULT_RETENTION_SECONDS = 14 * 86_400;

/** Connects to Redis and builds (and optionally serves) the API. */
export async function startApi(options: ApiOptions): Promise<ConveyorApi> {
  const host = options.host ?? '127.0.0.1';
  const tokens = options.tokens ?? [];
  // Before anything connects: an exposed API without tokens must not start at all.
  const anonymous =
    options.port !== undefined && checkExposure(host, tokens.length, !!options.allowAnonymous);
  const retentionSeconds = options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS;
  // Redis EXPIRE and BullMQ ages take whole seconds.
  if (!Number.isInteger(retentionSeconds) || retentionSeconds < 1)
    throw new RangeError(`retentionSeconds must be a positive integer, got ${retentionSeconds}`);
  // No offline queue: while Redis is down, requests fail at once with 503 instead of hanging.
  const target: RedisTarget = { url: options.redisUrl, cluster: options.redisCluster };
  const redis = openRedis(target, {
    enableOfflineQueue: false,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  logConnectionErrors(redis, options.logger, 'api');
  await redis.connect();
  const prefix = bullPrefix(options.prefix);
  // Grouped runs are added here when their group admits them: deep chains included.
  const flows = allowDeepFlows(new FlowProducer({ connection: redis, prefix }));
  const runs = new Queue(QUEUES.run, { connection: redis, prefix });
  const gates = new Queue(QUEUES.gate, { connection: redis, prefix });
  const stepQueues = new Map<string, Queue>();
  const step = (queueName: string) => {
    let queue = stepQueues.get(queueName);
    if (!queue) {
      queue = new Queue(queueName, { connection: redis, prefix });
      stepQueues.set(queueName, queue);
    }
    return queue;
  };
  const store = new RunStore(redis, options.prefix);
  const workers = new WorkerRegistry(redis, options.prefix);
  // APIs run the waiting check too: with every worker gone, nobody else would.
  const waiting = new WaitingCheck({
    redis,
    prefix: options.prefix,
    store,
    registry: workers,
    holder: `api-${hostname()}-${process.pid}`,
    logger: options.logger,
  });
  const retentionStore = new RunRetention(redis, options.prefix);
  const removal = new RunRemoval(store, retentionStore, { runs, gates, step });
  const workflows = new WorkflowStore(redis, options.prefix);
  const launcher = new RunLauncher(
    redis,
    store,
    flows,
    { runs, step },
    workers,
    retentionSeconds,
    options.logger,
  );
  const triggers = new TriggerLauncher(
    workflows,
    launcher,
    new TriggerStore(redis, options.prefix),
    options.logger,
  );
  const eventTriggers = new EventTriggers(triggers, options.logger);
  const scheduleQueue = new Queue<TickData>(QUEUES.schedule, { connection: redis, prefix });
  // The shared connection's errors reach requests as 503s; unheard, BullMQ would print each one.
  scheduleQueue.on('error', (err) => options.logger.debug({ err }, 'schedules queue error'));
  const schedules = new Schedules(scheduleQueue, workflows);
  const deps: ApiDeps = {
    redis,
    store,
    events: new EventFeed(redis, store.keys),
    drain: new Drain(),
    workflows,
    launcher,
    removal,
    triggers,
    eventTriggers,
    schedules,
    webhookSecrets: options.webhookSecrets ?? [],
    workers,
    inventory: new InventoryStore(redis, options.prefix, options.inventoryFile),
    secrets: new SecretStore(redis, options.prefix, options.secretKey),
    queues: new QueueSet(redis, prefix),
    knownHosts: options.knownHosts,
    logger: options.logger,
  };
  let ticks: ScheduleProcessor | undefined;
  const closeAll = async () => {
    await ticks?.close();
    await waiting.close();
    await deps.events.close();
    await Promise.all([
      deps.launcher.close(),
      flows.close(),
      runs.close(),
      gates.close(),
      scheduleQueue.close(),
      deps.queues.close(),
      ...[...stepQueues.values()].map((q) => q.close()),
    ]);
    redis.disconnect();
  };
  const app = createApp(deps, { tokens, corsOrigins: options.corsOrigins, rateLimit: options.rateLimit });
  let bus: EventBusConsumer | undefined;
  if (options.consumeEvents !== false) {
    bus = await startEventBus({
      redis: target,
      prefix: options.prefix,
      events: eventTriggers,
      depthOf: async (runId) => Number((await store.getRun(runId))?.trigger.depth ?? 0) || 0,
      logger: options.logger,
    });
  }
  if (options.schedules ?? true) {
    await schedules.syncAll();
    ticks = await startScheduleProcessor({
      redis: target,
      prefix,
      queue: scheduleQueue,
      workflows,
      launch: (request) => launcher.launch(request),
      logger: options.logger,
    });
  }
  const retention = startRetentionPass(retentionStore, removal, options.logger, options.retentionPass);
  waiting.start();
  let server: ServerType | undefined;
  let bound: AddressInfo | undefined;
  let url: string | undefined;
  if (options.port !== undefined) {
    bound = await new Promise<AddressInfo>((resolve, reject) => {
      // Once stopping, requests on connections already open are refused (503, Connection: close).
      const fetch: typeof app.fetch = (request, ...rest) =>
        deps.drain.stopping ? deps.drain.refusal() : app.fetch(request, ...rest);
      const s = createAdaptorServer({ fetch });
      s.once('error', reject);
      s.listen({ port: options.port, host, backlog: LISTEN_BACKLOG }, () =>
        resolve(s.address() as AddressInfo),
      );
      answerClientErrors(s as Server);
      server = s;
    }).catch(async (err) => {
      await retention.close();
      await bus?.close();
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
    retention,
    server,
    port: bound?.port,
    address: bound?.address,
    url,
    async close() {
      if (server) await stopServing(server as Server, deps.drain);
      else await deps.drain.drain(0);
      await bus?.close();
      await retention.close();
      await closeAll();
    },
  };
}

/**
 * Stops accepting (the listener closes, idle connections go, new requests on open ones get a
 * 503), ends every event stream with its last comment, then closes what is left: a client that
 * does not read its stream is cut off after `STREAM_DRAIN_MS`.
 */
async function stopServing(server: Server, drain: Drain): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  await drain.drain(STREAM_DRAIN_MS);
  // Streams that ended leave idle keep-alive connections; close them as they go idle.
  const deadline = Date.now() + STREAM_DRAIN_MS;
  let done = false;
  void closed.then(() => {
    done = true;
  });
  while (!done && Date.now() < deadline) {
    server.closeIdleConnections();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  server.closeAllConnections();
  await closed;
}
