/**
 * The `schedules` queue's worker, run by every API process (standalone mode included). Why the
 * API and not the step workers: starting a run is the API's job (inputs, idempotency,
 * concurrency groups, all in RunLauncher), workers know nothing of it and may serve only some
 * executors; BullMQ gives each tick job to one of however many API processes are up.
 */
import { type Queue, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { QUEUES } from '../flows/index.ts';
import { openRedis, type RedisTarget } from '../redis-client.ts';
import type { WorkflowStore } from '../store/index.ts';
import { createTickProcessor, type Launch, type TickData } from './schedules.ts';

/** A running tick processor. */
export interface ScheduleProcessor {
  close(): Promise<void>;
}

/** Starts processing ticks; resolves once the worker is connected. */
export async function startScheduleProcessor(options: {
  redis: RedisTarget;
  /** The hash-tagged BullMQ prefix. */
  prefix: string;
  queue: Queue<TickData>;
  workflows: WorkflowStore;
  launch: Launch;
  logger: Logger;
}): Promise<ScheduleProcessor> {
  // A BullMQ worker needs a connection that retries forever; the API's own fails fast (503).
  const connection = openRedis(options.redis, { maxRetriesPerRequest: null });
  connection.on('error', (err) => options.logger.debug({ err }, 'schedule worker connection error'));
  const worker = new Worker<TickData>(QUEUES.schedule, createTickProcessor(options), {
    connection,
    prefix: options.prefix,
    concurrency: 10,
  });
  worker.on('error', (err) => options.logger.error({ err }, 'schedule worker error'));
  await worker.waitUntilReady();
  return {
    async close() {
      // With Redis away BullMQ's close waits on its blocking fetch forever: cut it off (at once
      // when the connection is already down).
      let timer: NodeJS.Timeout | undefined;
      const cutOff = new Promise<void>((resolve) => {
        timer = setTimeout(
          () => {
            void worker.disconnect().catch(() => undefined);
            resolve();
          },
          connection.status === 'ready' ? CLOSE_GRACE_MS : 0,
        );
      });
      await Promise.race([worker.close().catch(() => undefined), cutOff]);
      clearTimeout(timer);
      connection.disconnect();
    },
  };
}

/** How long `close()` waits for BullMQ's own close before disconnecting. */
const CLOSE_GRACE_MS = 2000;
