/**
 * `on.event`: an event (posted to `POST /v1/events/:type` or emitted by a step) starts every
 * workflow that lists its type. Each run carries the chain's depth, so a workflow that triggers
 * itself (directly or round a loop) is cut off after `MAX_EVENT_DEPTH` nested runs.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { eventTypeProblem } from '../flows/index.ts';
import type { StartedRun, TriggerLauncher } from './trigger-launcher.ts';

/** Most nested runs one chain of events may start (the first run an event starts is depth 1). */
export const MAX_EVENT_DEPTH = 16;

/** Who published an event: the API, or a step of a run. */
export type EventSource = { type: 'http' } | { type: 'step'; runId: string; stepId: string; host?: string };

/** `GET /v1/events`: one event and what it started. */
export interface EventRecord {
  id: string;
  type: string;
  at: string;
  source: EventSource;
  /** The nesting depth the runs it starts get (`trigger.depth`). */
  depth: number;
  /** The payload, when its JSON is at most 4 KiB (the runs' `trigger.payload` always has it whole). */
  payload?: unknown;
  payloadTruncated?: true;
  runs: StartedRun[];
  refused: Array<{ workflow: string; message: string }>;
  /** Why nothing was started: the chain reached the limit, or the type is not valid. */
  cut?: string;
  error?: string;
}

/** An event to publish. */
export interface PublishRequest {
  type: string;
  payload: unknown;
  source: EventSource;
  depth: number;
  /** Names the event for replays: the same scope answers with what it first started. */
  scope?: string;
}

const LOGGED_PAYLOAD_BYTES = 4096;

/** Publishes events to subscribed workflows. */
export class EventTriggers {
  constructor(
    private readonly launcher: TriggerLauncher,
    private readonly logger: Logger,
  ) {}

  /** Starts every workflow subscribed to the event (once per scope); returns its record. */
  async publish(request: PublishRequest): Promise<{ record: EventRecord; replayed: boolean }> {
    const store = this.launcher.store;
    if (request.scope) {
      const first = await store.replay<EventRecord>(request.scope);
      if (first) return { record: first, replayed: true };
    }
    const payloadJson = JSON.stringify(request.payload ?? null);
    const record: EventRecord = {
      id: `evt_${Date.now().toString(36)}${randomBytes(5).toString('hex')}`,
      type: request.type,
      at: new Date().toISOString(),
      source: request.source,
      depth: request.depth,
      ...(Buffer.byteLength(payloadJson) <= LOGGED_PAYLOAD_BYTES
        ? { payload: request.payload ?? null }
        : { payloadTruncated: true as const }),
      runs: [],
      refused: [],
    };
    const problem = eventTypeProblem(request.type);
    if (problem) {
      record.error = problem;
    } else if (request.depth > MAX_EVENT_DEPTH) {
      record.cut = `a chain of events already started ${MAX_EVENT_DEPTH} nested runs: "${request.type}" starts nothing more, so a workflow cannot trigger itself forever`;
      await store.countCut();
      this.logger.warn({ event: request.type, source: request.source, depth: request.depth }, record.cut);
    } else {
      const trigger = {
        type: 'event',
        event: request.type,
        payload: request.payload ?? null,
        source: request.source,
        depth: request.depth,
      };
      const started = await this.launcher.startMatching(
        (summary) => summary.on?.event?.includes(request.type) ?? false,
        trigger,
        request.scope,
      );
      record.runs = started.runs;
      record.refused = started.refused;
    }
    await store.recordEvent(record);
    if (request.scope) await store.remember(request.scope, record);
    return { record, replayed: false };
  }

  /** The newest events (newest first) and how many chains were cut off. */
  async recent(limit: number): Promise<{ events: EventRecord[]; cut: number }> {
    const store = this.launcher.store;
    const [events, cut] = await Promise.all([store.recentEvents<EventRecord>(limit), store.cuts()]);
    return { events, cut };
  }
}
