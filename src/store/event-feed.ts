/**
 * Run event streams for every open follower of a process through one shared reader: history is
 * replayed on the caller's (non-blocking) connection, then one `XREAD BLOCK` connection reads the
 * tail of every followed run at once and hands each follower what comes after its position.
 * A follower on a new run interrupts the blocked read (`CLIENT UNBLOCK`) so it joins at once.
 * In a Redis Cluster the reader is a plain connection to the master of the streams' slot (all of
 * Conveyor's keys share one), so `CLIENT ID` and `CLIENT UNBLOCK` reach the node it blocks on.
 */
import type { Redis } from 'ioredis';
import { UnavailableError } from '../errors.ts';
import { type RedisClient, slotOwner } from '../redis-client.ts';
import type { Keys } from './keys.ts';
import { FINAL_RUN_STATUSES, isTerminalEvent, type RunEvent, toEvent } from './run-types.ts';

/** Tuning of a feed. */
export interface EventFeedOptions {
  /** How long one shared `XREAD` blocks. @defaultValue 5000 */
  blockMs: number;
  /** Entries read per stream and call. @defaultValue 500 */
  batch: number;
  /** Silence after which a follower gets a keep-alive (`null`). @defaultValue 5000 */
  keepAliveMs: number;
  /** Connect timeout of the reader. @defaultValue 2000 */
  connectTimeoutMs: number;
}

interface Follower {
  /** The id of the last event handed to this follower (or its starting point). */
  last: string;
  queue: RunEvent[];
  wake?: () => void;
}

/** The shared reader's name in `CLIENT LIST`: one per API process, however many streams are open. */
export const FEED_CONNECTION_NAME = 'conveyor:events';

/** Orders stream ids (`<ms>-<seq>`); BigInt, since a part may reach 2^64 - 1. */
export function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt);
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt);
  return am === bm ? (as === bs ? 0 : as < bs ? -1 : 1) : am < bm ? -1 : 1;
}

/** Age of the oldest entry of an XREAD reply, by its stream id's time (Redis's clock at XADD). */
function oldestAge(reply: Array<[string, Array<[string, string[]]>]> | null): number {
  let oldest = Number.POSITIVE_INFINITY;
  for (const [, entries] of reply ?? []) {
    const first = entries[0]?.[0];
    if (first) oldest = Math.min(oldest, Number(first.split('-')[0]));
  }
  return Number.isFinite(oldest) ? Math.max(0, Date.now() - oldest) : 0;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One process's shared reader of run event streams. */
export class EventFeed {
  private readonly options: EventFeedOptions;
  private readonly runs = new Map<string, Set<Follower>>();
  private reader?: Redis;
  private readerId?: number;
  /** A connection to the reader's node, for `CLIENT UNBLOCK` (the shared one for a single Redis). */
  private readerNode?: Redis;
  private connecting?: Promise<Redis>;
  private loop?: Promise<void>;
  /** Per run, the id the in-flight read started from; undefined while no read is blocked. */
  private reading?: Map<string, string>;
  /** The read an unblock is under way for (one at a time per read). */
  private unblocking?: Map<string, string>;
  private closed = false;
  /** How long the entries of the last read had waited in Redis (ms); 0 after an empty read. */
  private lagMs = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    options: Partial<EventFeedOptions> = {},
  ) {
    this.options = { blockMs: 5000, batch: 500, keepAliveMs: 5000, connectTimeoutMs: 2000, ...options };
  }

  /** Resolves once the shared reader is connected; `UnavailableError` when Redis refuses it. */
  async ready(): Promise<void> {
    await this.connectReader();
  }

  /** Open followers (for tests and metrics). */
  get followers(): number {
    let n = 0;
    for (const set of this.runs.values()) n += set.size;
    return n;
  }

  /**
   * Yields the run's events after `afterId` (all when omitted) up to its terminal event, and
   * `null` after each `keepAliveMs` of silence. A run that had already ended when the call began
   * ends the iteration once its history is replayed, even when `afterId` is past the terminal event.
   */
  async *follow(
    runId: string,
    afterId: string | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<RunEvent | null> {
    // Read before the replay: if the run was final then, its terminal event is in the history.
    const ended = FINAL_RUN_STATUSES.has((await this.redis.hget(this.keys.run(runId), 'status')) ?? '');
    let last = afterId ?? '0-0';
    for (;;) {
      const entries = await this.redis.xrange(
        this.keys.events(runId),
        `(${last}`,
        '+',
        'COUNT',
        this.options.batch,
      );
      for (const entry of entries) {
        const event = toEvent(entry);
        last = event.id;
        yield event;
        if (isTerminalEvent(event.type)) return;
      }
      if (entries.length < this.options.batch) break;
    }
    if (ended || signal.aborted) return;
    // A resume id past the newest event (a client's clock, a made-up id) would hide every event
    // to come, the terminal one included: follow from the newest event instead. (Only a resume
    // that replayed nothing can be past it.)
    if (afterId !== undefined && last === afterId) {
      const [newest] = await this.redis.xrevrange(this.keys.events(runId), '+', '-', 'COUNT', 1);
      const newestId = newest?.[0] ?? '0-0';
      if (compareIds(last, newestId) > 0) last = newestId;
    }

    const follower: Follower = { last, queue: [] };
    this.add(runId, follower);
    try {
      while (!signal.aborted && !this.closed) {
        const event = follower.queue.shift();
        if (!event) {
          if (!(await this.waitFor(follower, signal))) yield null;
          continue;
        }
        yield event;
        if (isTerminalEvent(event.type)) return;
      }
    } finally {
      this.remove(runId, follower);
    }
  }

  /** Stops the reader; open followers end. */
  async close(): Promise<void> {
    this.closed = true;
    for (const set of this.runs.values()) for (const f of set) f.wake?.();
    this.reader?.disconnect();
    await this.loop;
  }

  private waitFor(follower: Follower, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (woken: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        follower.wake = undefined;
        resolve(woken);
      };
      const onAbort = () => done(true);
      const timer = setTimeout(() => done(false), this.options.keepAliveMs);
      signal.addEventListener('abort', onAbort, { once: true });
      follower.wake = () => done(true);
    });
  }

  private add(runId: string, follower: Follower): void {
    let set = this.runs.get(runId);
    if (!set) {
      set = new Set();
      this.runs.set(runId, set);
    }
    set.add(follower);
    // The blocked read does not cover this follower (a new run, or an earlier position): interrupt it.
    const from = this.reading?.get(runId);
    if (this.reading && (from === undefined || compareIds(follower.last, from) < 0)) void this.unblock();
    this.ensureLoop();
  }

  private ensureLoop(): void {
    if (this.loop) return;
    this.loop = this.run().finally(() => {
      this.loop = undefined;
      // A follower may have joined between the loop's last look and its end.
      if (this.runs.size > 0 && !this.closed) this.ensureLoop();
    });
  }

  private remove(runId: string, follower: Follower): void {
    const set = this.runs.get(runId);
    set?.delete(follower);
    if (set?.size === 0) this.runs.delete(runId);
  }

  private async connectReader(): Promise<Redis> {
    if (this.closed) throw new UnavailableError('the event feed is closed');
    if (this.reader?.status === 'ready') return this.reader;
    this.connecting ??= (async () => {
      this.reader?.disconnect();
      this.reader = undefined;
      // No reconnect of its own: the read loop reconnects with backoff, and a refused connection
      // must surface at once (a new stream answers 503) rather than be retried in the background.
      let reader: Redis | undefined;
      try {
        const node = await slotOwner(this.redis, this.keys.records());
        reader = node.duplicate({
          connectionName: FEED_CONNECTION_NAME,
          lazyConnect: true,
          retryStrategy: () => null,
          maxRetriesPerRequest: 0,
          enableOfflineQueue: false,
          connectTimeout: this.options.connectTimeoutMs,
        });
        reader.on('error', () => {}); // surfaced by connect() and by the read that fails
        this.readerNode = node;
        await reader.connect();
        this.readerId = Number(await reader.client('ID'));
      } catch (err) {
        reader?.disconnect();
        throw new UnavailableError('Redis refused a connection for event streams; try again later', {
          cause: err,
        });
      }
      if (this.closed) {
        reader.disconnect();
        throw new UnavailableError('the event feed is closed');
      }
      this.reader = reader;
      return reader;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Interrupts the blocked read; retries briefly in case the read has not reached Redis yet. */
  private async unblock(): Promise<void> {
    const reading = this.reading;
    if (!reading || this.unblocking === reading) return;
    this.unblocking = reading;
    for (let i = 0; i < 50 && this.reading === reading && this.readerId !== undefined; i++) {
      const unblocked = await (this.readerNode ?? this.redis).client('UNBLOCK', this.readerId).catch(() => 0);
      if (unblocked === 1) return;
      await sleep(10);
    }
  }

  /** What `/metrics` shows of the feed: open followers, followed runs and the last read's lag. */
  stats(): { followers: number; runs: number; lagMs: number } {
    let followers = 0;
    for (const set of this.runs.values()) followers += set.size;
    return { followers, runs: this.runs.size, lagMs: this.lagMs };
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (!this.closed && this.runs.size > 0) {
      let reader: Redis;
      try {
        reader = await this.connectReader();
      } catch {
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      }
      const from = new Map<string, string>();
      const keyToRun = new Map<string, string>();
      for (const [runId, set] of this.runs) {
        let min: string | undefined;
        for (const f of set) if (min === undefined || compareIds(f.last, min) < 0) min = f.last;
        from.set(runId, min!);
        keyToRun.set(this.keys.events(runId), runId);
      }
      let reply: Array<[string, Array<[string, string[]]>]> | null;
      this.reading = from;
      try {
        reply = (await reader.xread(
          'COUNT',
          this.options.batch,
          'BLOCK',
          this.options.blockMs,
          'STREAMS',
          ...keyToRun.keys(),
          ...from.values(),
        )) as typeof reply;
        backoff = 100;
      } catch {
        // The reader's connection broke (Redis restarting), or its node no longer owns the slot
        // (a cluster failover answers MOVED): reconnect, to the slot's owner, and lose nothing.
        this.reading = undefined;
        if (reader.status === 'ready') reader.disconnect();
        if (this.closed) break;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      }
      this.reading = undefined;
      this.lagMs = oldestAge(reply);
      for (const [key, entries] of reply ?? []) {
        const runId = keyToRun.get(key)!;
        const start = from.get(runId)!;
        const events = entries.map(toEvent);
        for (const follower of this.runs.get(runId) ?? []) {
          // A follower that joined behind this read's start is served by the next read.
          if (compareIds(follower.last, start) < 0) continue;
          for (const event of events) {
            if (compareIds(event.id, follower.last) > 0) {
              follower.queue.push(event);
              follower.last = event.id;
            }
          }
          if (follower.queue.length) follower.wake?.();
        }
      }
    }
  }
}
