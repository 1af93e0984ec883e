/** The shapes of run records and events (docs/reference.md §4 and §5), shared by the store and its readers. */
import type { SerializedError } from '../errors.ts';
import type { RunMeta } from '../flows/index.ts';

/** A run's status (docs/reference.md §4.2). */
export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
/** A step's status (docs/reference.md §4.2). */
export type StepStatus = 'pending' | 'queued' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

/** Final run statuses: a run in one has ended. */
export const FINAL_RUN_STATUSES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);

/** Final step statuses: a step in one never runs or changes again. */
export const FINAL_STEP_STATUSES: ReadonlySet<string> = new Set([
  'succeeded',
  'failed',
  'skipped',
  'cancelled',
]);

/** What a run document shows of a step besides its status. */
export interface StepDetails {
  executor: string;
  attempts: number;
  exitCode?: number | null;
  signal?: string | null;
  startedAt?: string;
  finishedAt?: string;
  outputs?: Record<string, unknown>;
  error?: SerializedError;
  continueOnError?: boolean;
  /** Fan-out steps: the hosts the step runs on, in order. */
  hosts?: string[];
  /** Types of the events the step published when it succeeded. */
  emitted?: string[];
  /** The worker that started the latest attempt (its heartbeat id). */
  worker?: string;
}

/** One host instance of a fan-out step: its status and the attempt-level details of a step. */
export type InstanceView = { status: StepStatus } & Partial<
  Pick<StepDetails, 'attempts' | 'exitCode' | 'signal' | 'startedAt' | 'finishedAt' | 'outputs' | 'error'>
>;

/** A step as the run document shows it. */
export type StepView = {
  status: StepStatus;
  /** The steps this one needs (the run's DAG, as the run viewer draws it). */
  needs: string[];
  /** The step's display name, when the definition gives one. */
  name?: string;
  instances?: Record<string, InstanceView>;
  /** The step's `runsOn` tags, when it has any. */
  runsOn?: string[];
  /** Why a queued or pending step is not picked up: no live worker serves its executor and tags. */
  waiting?: string;
} & Partial<StepDetails>;

/** `GET /v1/runs/:id`. */
export interface RunDocument {
  id: string;
  workflow: RunMeta['workflow'];
  status: RunStatus;
  cancelRequested: boolean;
  /** Why the run was cancelled, when the engine did it (concurrency groups). */
  cancelReason?: string;
  /** The run's concurrency group. */
  concurrency?: { group: string; cancelInProgress: boolean };
  inputs: Record<string, unknown>;
  trigger: Record<string, unknown>;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  steps: Record<string, StepView>;
}

/** One entry of a run's event stream. */
export interface RunEvent {
  /** Redis stream id: increasing within the run; the SSE `id`. */
  id: string;
  type: string;
  data: Record<string, unknown>;
}

/** What a worker reads before running a step, in one round trip. */
export interface StepSnapshot {
  meta?: RunMeta;
  cancelRequested: boolean;
  status: Record<string, StepStatus | undefined>;
  details: Record<string, StepDetails | undefined>;
}

/** Event payload as callers give it: the store adds `runId`, `type` and `at`. */
export interface EventInput {
  type: string;
  step?: string;
  [field: string]: unknown;
}

/** Converts a raw XRANGE/XREAD entry. */
export function toEvent([id, fields]: [string, string[]]): RunEvent {
  let type = '';
  let data: Record<string, unknown> = {};
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'type') type = fields[i + 1]!;
    else if (fields[i] === 'data') data = JSON.parse(fields[i + 1]!) as Record<string, unknown>;
  }
  return { id, type, data };
}

/** True for the events that end a run's stream. */
export function isTerminalEvent(type: string): boolean {
  return type === 'run.succeeded' || type === 'run.failed' || type === 'run.cancelled';
}
