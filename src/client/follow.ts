/**
 * `runs.follow`: a run's Server-Sent Events as an async iterator. It reads the stream with
 * `fetch` (so it can send `Authorization`), parses it with eventsource-parser, and after a
 * disconnect or an API restart reconnects with `Last-Event-ID`, so no event is missed or repeated.
 * It ends after the run's terminal event, or quietly when `signal` aborts.
 */
import { createParser } from 'eventsource-parser';
import { apiError, ConveyorApiError } from './errors.ts';

/** One event of a run (docs/reference.md §5). */
export interface RunEvent {
  /** Increasing within the run; resume after it with `lastEventId`. */
  id: string;
  /** The type: `run.started`, `step.log`, `run.succeeded`, … */
  event: string;
  data: { id: string; runId: string; type: string; at: string; step?: string; [field: string]: unknown };
}

/** Options of `runs.follow`. */
export interface FollowOptions {
  /** Start after this event id instead of at the beginning. */
  lastEventId?: string;
  /** Stops following; the iterator then ends without an error. */
  signal?: AbortSignal;
  /** First wait before a reconnect, doubled up to `maxRetryMs`. @defaultValue 100 */
  retryMs?: number;
  /** @defaultValue 5000 */
  maxRetryMs?: number;
  /** Called before each reconnect, with the id it resumes after (tests and logs use it). */
  onReconnect?: (lastEventId: string | undefined, cause: unknown) => void;
}

/** What `follow` needs of the client. */
export interface FollowContext {
  baseUrl: string;
  headers: () => Record<string, string>;
  fetch: typeof fetch;
}

const TERMINAL = new Set(['run.succeeded', 'run.failed', 'run.cancelled']);

/** Follows the events of run `runId`. */
export async function* followRun(
  context: FollowContext,
  runId: string,
  options: FollowOptions = {},
): AsyncGenerator<RunEvent, void, undefined> {
  const { signal } = options;
  let lastEventId = options.lastEventId;
  let delay = options.retryMs ?? 100;
  const maxDelay = options.maxRetryMs ?? 5000;
  const url = `${context.baseUrl}/v1/runs/${encodeURIComponent(runId)}/events`;
  while (!signal?.aborted) {
    let cause: unknown = new Error('the event stream ended before the run did');
    try {
      const headers: Record<string, string> = { ...context.headers(), accept: 'text/event-stream' };
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      const res = await context.fetch(url, { headers, signal });
      if (!res.ok || !res.body) {
        const body = await res.json().catch(() => undefined);
        const err = apiError(res.status, body);
        // A bad id, a missing run or a refused token will not get better by asking again.
        if (res.status < 500) throw err;
        throw new Retry(err);
      }
      for await (const event of readEvents(res.body)) {
        lastEventId = event.id;
        delay = options.retryMs ?? 100;
        yield event;
        if (TERMINAL.has(event.event)) return;
      }
    } catch (err) {
      if (signal?.aborted) return;
      if (err instanceof ConveyorApiError) throw err;
      cause = err instanceof Retry ? err.cause : err;
    }
    options.onReconnect?.(lastEventId, cause);
    await wait(delay, signal);
    delay = Math.min(delay * 2, maxDelay);
  }
}

/** A server-side failure worth another try. */
class Retry extends Error {
  constructor(cause: unknown) {
    super('retry', { cause });
  }
}

async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<RunEvent> {
  const parsed: RunEvent[] = [];
  const parser = createParser({
    onEvent(message) {
      // Every event of the API has an id and a type; anything else is not one of its events.
      if (message.id === undefined || message.event === undefined) return;
      parsed.push({
        id: message.id,
        event: message.event,
        data: JSON.parse(message.data) as RunEvent['data'],
      });
    },
  });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      parser.feed(decoder.decode(value, { stream: true }));
      while (parsed.length) yield parsed.shift()!;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
