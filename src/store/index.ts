/** Conveyor's own Redis records: runs, events, logs, workflows. BullMQ's keys are BullMQ's. */
export { AdminSessions } from './admin-sessions.ts';
export { compareIds, EventFeed, type EventFeedOptions } from './event-feed.ts';
export { followEvents } from './event-follower.ts';
export { type Admission, GroupStore } from './group-store.ts';
export type { InstanceRecords } from './instance-records.ts';
export { InventoryStore } from './inventory-store.ts';
export { bullPrefix, type Keys, keys } from './keys.ts';
export { RateLimitStore, type RateLimitTake } from './rate-limit-store.ts';
export { initialDocument } from './run-document.ts';
export type { RunIndexEntry } from './run-reader.ts';
export { type DeleteOutcome, type ExpiredRun, RunRetention } from './run-retention.ts';
export { RunStore } from './run-store.ts';
export {
  type EventInput,
  FINAL_RUN_STATUSES,
  FINAL_STEP_STATUSES,
  type InstanceView,
  isTerminalEvent,
  type RunDocument,
  type RunEvent,
  type RunStatus,
  type StepDetails,
  type StepSnapshot,
  type StepStatus,
  type StepView,
} from './run-types.ts';
export { SecretStore, SecretsDisabledError } from './secret-store.ts';
export { DURATION_BUCKETS_MS, type DurationHistogram, parseStats, readStats, type Stats } from './stats.ts';
export { type BusEntry, TriggerStore } from './trigger-store.ts';
export { type WorkerHeartbeat, WorkerRegistry } from './worker-registry.ts';
export { summarise, WorkflowStore, type WorkflowSummary, type WorkflowVersion } from './workflow-store.ts';
