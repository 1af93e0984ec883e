/** Triggers: `on.schedule` job schedulers, the trigger listing, and concurrency groups. */
export {
  ADMISSION_GRACE_MS,
  type AdmitDeps,
  admitRun,
  evaluateGroup,
  releaseGroup,
  startFromRecord,
  withdrawPending,
} from './concurrency.ts';
export { listTriggers, type TriggerView } from './list.ts';
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
