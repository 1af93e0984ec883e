/**
 * What a worker runs beside its queues: its heartbeat, the periodic waiting check and record
 * repair (one process of many does each pass, by lease), and the optional health port.
 */
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { RedisClient, RedisTarget } from '../redis-client.ts';
import type { RunStore, WorkerRegistry } from '../store/index.ts';
import { startHealthServer } from './health-server.ts';
import { type Beat, startHeartbeat } from './heartbeat.ts';
import { RecordRepair } from './record-repair.ts';
import type { StepProcessorDeps } from './step-deps.ts';
import { WaitingCheck } from './waiting-check.ts';

/** What the maintenance needs from its worker. */
export interface MaintenanceOptions {
  id: string;
  redis: RedisClient;
  /** Where `redis` is, for the health port's own connection. */
  target: RedisTarget;
  prefix: string;
  store: RunStore;
  registry: WorkerRegistry;
  deps: StepProcessorDeps;
  runsQueue: Queue;
  stepQueue(name: string): Queue;
  beat(): Beat;
  heartbeatMs: number;
  waitingCheckMs: number;
  reconcileIntervalMs: number;
  reconcileGraceMs: number;
  healthPort?: number;
  healthHost: string;
  logger: Logger;
}

/** Running maintenance. */
export interface Maintenance {
  healthPort?: number;
  /** The worker is stopping: readiness false, heartbeat gone, no more periodic passes. */
  stop(): Promise<void>;
  /** Closes the health port (last, so probes see the drain). */
  close(): Promise<void>;
}

/** Starts the heartbeat, the periodic passes and the health port. */
export async function startMaintenance(o: MaintenanceOptions): Promise<Maintenance> {
  const heartbeat = await startHeartbeat(o.registry, o.beat, o.heartbeatMs, o.logger);
  const waiting = new WaitingCheck({
    redis: o.redis,
    prefix: o.prefix,
    store: o.store,
    registry: o.registry,
    holder: o.id,
    intervalMs: o.waitingCheckMs,
    logger: o.logger,
  });
  waiting.start();
  const repair = new RecordRepair(o.deps, {
    registry: o.registry,
    runsQueue: o.runsQueue,
    queue: o.stepQueue,
    holder: o.id,
    intervalMs: o.reconcileIntervalMs,
    graceMs: o.reconcileGraceMs,
  });
  repair.start();
  const health =
    o.healthPort === undefined
      ? undefined
      : await startHealthServer({
          port: o.healthPort,
          host: o.healthHost,
          redis: o.target,
          workerId: o.id,
          logger: o.logger,
        });
  return {
    healthPort: health?.port,
    async stop() {
      health?.draining();
      // Out of the list at once, so the waiting check and dry runs stop counting on this worker.
      await heartbeat.stop();
      await Promise.all([waiting.close(), repair.close()]);
    },
    async close() {
      await health?.close();
    },
  };
}
