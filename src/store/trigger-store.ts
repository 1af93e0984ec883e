/**
 * Trigger records: what a delivery or keyed event started (so a redelivery starts nothing new),
 * the log of recent events, the count of cut-off event chains, and the consumer-group reads of
 * the event bus that steps publish to.
 */
import type { RedisClient } from '../redis-client.ts';
import { type Keys, keys } from './keys.ts';

/** How long a delivery id or event key remembers what it started (as idempotency keys: 7 days). */
const ONCE_TTL_S = 7 * 24 * 3600;
/** Recent events kept for `GET /v1/events`. */
const EVENT_LOG_LENGTH = 1000;

/** One entry read from the bus: its stream id and its fields. */
export interface BusEntry {
  id: string;
  fields: Record<string, string>;
}

type RawEntries = Array<[id: string, fields: string[] | null]>;

function toEntries(raw: RawEntries | null | undefined): BusEntry[] {
  return (raw ?? []).flatMap(([id, flat]) => {
    // XAUTOCLAIM reports entries trimmed away meanwhile with no fields.
    if (!flat) return [];
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
    return [{ id, fields }];
  });
}

/** Trigger records over one Redis connection and prefix. */
export class TriggerStore {
  readonly keys: Keys;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  /** What `scope` (e.g. `delivery:github:<id>`) started the first time, if it was seen. */
  async replay<T>(scope: string): Promise<T | undefined> {
    const raw = await this.redis.get(this.keys.triggerOnce(scope));
    return raw === null ? undefined : (JSON.parse(raw) as T);
  }

  /** Remembers what `scope` started. */
  async remember(scope: string, value: unknown): Promise<void> {
    await this.redis.set(this.keys.triggerOnce(scope), JSON.stringify(value), 'EX', ONCE_TTL_S);
  }

  /** Appends an event to the log of recent events. */
  async recordEvent(record: unknown): Promise<void> {
    await this.redis.xadd(
      this.keys.eventLog(),
      'MAXLEN',
      '~',
      EVENT_LOG_LENGTH,
      '*',
      'data',
      JSON.stringify(record),
    );
  }

  /** The newest `limit` events, newest first. */
  async recentEvents<T>(limit: number): Promise<T[]> {
    const raw = (await this.redis.xrevrange(this.keys.eventLog(), '+', '-', 'COUNT', limit)) as RawEntries;
    return toEntries(raw).map((e) => JSON.parse(e.fields.data ?? 'null') as T);
  }

  /** Counts one event chain cut off at the nesting limit. */
  async countCut(): Promise<void> {
    await this.redis.incr(this.keys.eventCuts());
  }

  /** How many event chains were cut off. */
  async cuts(): Promise<number> {
    return Number(await this.redis.get(this.keys.eventCuts()));
  }

  /** Creates the bus's consumer group at the stream's end (events before the first API are not replayed). */
  async ensureBusGroup(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.keys.bus(), this.keys.busGroup(), '$', 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
    }
  }

  /** New bus entries for `consumer`, waiting up to `blockMs` (use a connection of its own). */
  async readBus(consumer: string, count: number, blockMs: number): Promise<BusEntry[]> {
    const reply = (await this.redis.xreadgroup(
      'GROUP',
      this.keys.busGroup(),
      consumer,
      'COUNT',
      count,
      'BLOCK',
      blockMs,
      'STREAMS',
      this.keys.bus(),
      '>',
    )) as Array<[stream: string, entries: RawEntries]> | null;
    return toEntries(reply?.[0]?.[1]);
  }

  /** Takes over entries another consumer read but never acknowledged for `idleMs` (it died). */
  async claimStale(consumer: string, idleMs: number, count: number): Promise<BusEntry[]> {
    const reply = (await this.redis.xautoclaim(
      this.keys.bus(),
      this.keys.busGroup(),
      consumer,
      idleMs,
      '0-0',
      'COUNT',
      count,
    )) as [next: string, entries: RawEntries];
    return toEntries(reply[1]);
  }

  /** Acknowledges a handled bus entry. */
  async ack(id: string): Promise<void> {
    await this.redis.xack(this.keys.bus(), this.keys.busGroup(), id);
  }
}
