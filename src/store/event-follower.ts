/**
 * Follows a run's event stream: replays from a position, then blocks on XREAD for new entries,
 * and stops after the run's terminal event. Each follower owns a duplicated connection because
 * a blocking read holds its connection; aborting the signal closes it at once.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';
import { isTerminalEvent, type RunEvent, toEvent } from './run-types.ts';

const BLOCK_MS = 5000;
const BATCH = 500;

/**
 * Yields the run's events after `afterId` (all of them when omitted) until the terminal one, and
 * `null` after each quiet block so the caller can send a keep-alive.
 */
export async function* followEvents(
  source: Redis,
  keys: Keys,
  runId: string,
  afterId: string | undefined,
  signal: AbortSignal,
): AsyncGenerator<RunEvent | null> {
  const redis = source.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true });
  const close = () => redis.disconnect();
  signal.addEventListener('abort', close, { once: true });
  let last = afterId ?? '0-0';
  try {
    while (!signal.aborted) {
      const reply = (await redis.xread(
        'COUNT',
        BATCH,
        'BLOCK',
        BLOCK_MS,
        'STREAMS',
        keys.events(runId),
        last,
      )) as Array<[string, Array<[string, string[]]>]> | null;
      if (!reply) {
        yield null;
        continue;
      }
      for (const entry of reply[0]?.[1] ?? []) {
        const event = toEvent(entry);
        last = event.id;
        yield event;
        if (isTerminalEvent(event.type)) return;
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    signal.removeEventListener('abort', close);
    close();
  }
}
