/** Triggers of the push and event kind: webhook verification, push matching, event fan-out. */
export { type EventBusConsumer, startEventBus } from './event-bus.ts';
export { type EventRecord, type EventSource, EventTriggers, MAX_EVENT_DEPTH } from './events.ts';
export { changedFiles, type Delivery, type PushCommit, type PushTrigger, readDelivery } from './push.ts';
export { pushMatches } from './push-match.ts';
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
