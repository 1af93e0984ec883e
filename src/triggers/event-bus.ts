/**
 * Reads the event bus (events steps emit, `$CONVEYOR_EVENTS` / `ctx.emit`) through one Redis
 * consumer group shared by every API process: each entry goes to one process, is turned into
 * runs of the subscribed workflows, and is acknowledged after. An entry whose process died
 * before acknowledging it is taken over by another after `claimIdleMs`; its runs were started
 * under the entry's id as idempotency key, so taking it over starts nothing twice.
 *
 * It runs in the API processes because they own run launching (the registry of workflows and
 * the run launcher); workers only publish. With no API up, events wait in the stream.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { openRedis, type RedisTarget } from '../redis-client.ts';
import { type BusEntry, TriggerStore } from '../store/index.ts';
import type { EventSource, EventTriggers } from './events.ts';

/** Options of the consumer. */
export interface EventBusOptions {
  redis: RedisTarget;
  prefix: string;
  events: EventTriggers;
  /** The `trigger.depth` of a run (0 when it was not started by an event). */
  depthOf: (runId: string) => Promise<number>;
  logger: Logger;
  /** An unacknowledged entry is taken over after this long. @defaultValue 60000 */
  claimIdleMs?: number;
  /** How long one blocking read waits. @defaultValue 5000 */
  blockMs?: number;
}

/** A running consumer. */
export interface EventBusConsumer {
  close(): Promise<void>;
}

/** Starts consuming; resolves once the group exists, so events emitted from then on are seen. */
export async function startEventBus(options: EventBusOptions): Promise<EventBusConsumer> {
  const { claimIdleMs = 60_000, blockMs = 5000, logger } = options;
  // A blocking read holds its connection: this one is the consumer's alone. No offline queue:
  // while Redis is down a command fails at once and the loop waits, instead of piling up.
  const connection = openRedis(options.redis, {
    enableOfflineQueue: false,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  // Errors reach the loop through the commands that fail; without a listener ioredis prints them.
  connection.on('error', () => undefined);
  await connection.connect();
  const store = new TriggerStore(connection, options.prefix);
  await store.ensureBusGroup();
  const consumer = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  let stopped = false;
  let handling = false;
  let lastClaim = 0;
  let signalStop!: () => void;
  const stopSignal = new Promise<undefined>((resolve) => {
    signalStop = () => resolve(undefined);
  });
  // ioredis leaves a command pending forever when the client is disconnected while reconnecting:
  // waits race the stop signal so close() never hangs on one.
  const untilStopped = <T>(promise: Promise<T>): Promise<T | undefined> =>
    Promise.race([promise, stopSignal]);

  const handle = async (entry: BusEntry): Promise<void> => {
    let data: { payload?: unknown; source?: { runId?: string; stepId?: string; host?: string } };
    try {
      data = JSON.parse(entry.fields.data ?? '');
    } catch {
      logger.warn({ entry: entry.id }, 'event bus entry is not JSON: skipped');
      return;
    }
    const runId = data.source?.runId;
    const source: EventSource = runId
      ? {
          type: 'step',
          runId,
          stepId: data.source?.stepId ?? '',
          ...(data.source?.host && { host: data.source.host }),
        }
      : { type: 'http' };
    const depth = (runId ? await options.depthOf(runId) : 0) + 1;
    await options.events.publish({
      type: entry.fields.type ?? '',
      payload: data.payload,
      source,
      depth,
      scope: `bus:${entry.id}`,
    });
  };

  const loop = async (): Promise<void> => {
    while (!stopped) {
      try {
        let entries: BusEntry[] = [];
        if (Date.now() - lastClaim >= claimIdleMs / 2) {
          lastClaim = Date.now();
          entries = (await untilStopped(store.claimStale(consumer, claimIdleMs, 16))) ?? [];
        }
        if (entries.length === 0 && !stopped)
          entries = (await untilStopped(store.readBus(consumer, 16, blockMs))) ?? [];
        handling = true;
        for (const entry of entries) {
          await handle(entry);
          await store.ack(entry.id);
        }
      } catch (err) {
        if (stopped) break;
        // The stream was deleted (a flushed database): recreate the group, then read on.
        if (/NOGROUP/.test((err as Error).message)) await store.ensureBusGroup().catch(() => undefined);
        // Redis down or a launch failed: the entry stays pending and is read again.
        else logger.warn({ err }, 'event bus read failed; retrying in a second');
        let timer: NodeJS.Timeout | undefined;
        await untilStopped(new Promise((resolve) => (timer = setTimeout(resolve, 1000))));
        clearTimeout(timer);
      } finally {
        handling = false;
      }
    }
  };
  const running = loop();
  logger.info({ consumer }, 'consuming the event bus');

  return {
    async close() {
      stopped = true;
      signalStop();
      // A blocking read is cut short; entries being handled are finished and acknowledged first
      // (their commands fail at once if Redis is gone, so this never waits long).
      if (!handling) connection.disconnect();
      await running;
      connection.disconnect();
    },
  };
}
