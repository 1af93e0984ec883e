/** Triggers: push webhooks, events and the bus, `on.schedule` job schedulers, the listing, concurrency groups. */

export {
  ADMISSION_GRACE_MS,
  type AdmitDeps,
  admitRun,
  evaluateGroup,
  releaseGroup,
  startFromRecord,
  withdrawPending,
} from './concurrency.ts';
export { type EventBusConsumer, startEventBus } from './event-bus.ts';
export { type EventRecord, type EventSource, EventTriggers, MAX_EVENT_DEPTH } from './events.ts';
export { listTriggers, type TriggerView } from './list.ts';
export { changedFiles, type Delivery, type PushCommit, type PushTrigger, readDelivery } from './push.ts';
export { pushMatches } from './push-match.ts';
export { type ScheduleProcessor, startScheduleProcessor } from './schedule-processor.ts';
export {
  createTickProcessor,
  type Launch,
  type ScheduleEntry,
  Schedules,
  scheduledAtOf,
  scheduleEntries,
  type TickData,
} from './schedules.ts';
export {
  type PushResult,
  type RunStarter,
  type StartedRun,
  type StartResult,
  TriggerLauncher,
} from './trigger-launcher.ts';
export {
  claimedRepository,
  type HeaderLookup,
  type Provider,
  parseSecretList,
  repositorySecretName,
  SIGNATURE_HEADER,
  verifySignature,
} from './webhook-signature.ts';
