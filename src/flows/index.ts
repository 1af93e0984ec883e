/** The definition language: parsing, validation, expressions and the DAG → BullMQ flow compiler. */

export { canonicalJson, digestOf } from './canonical.ts';
export {
  compileRun,
  EXECUTOR_NAMES,
  GATE_PARK_MS,
  type GateJobData,
  gateJobId,
  keepJobsFor,
  keepJobsLike,
  primaryParents,
  QUEUES,
  queueNames,
  type RunMeta,
  type StepJobData,
  stepJobId,
} from './compile.ts';
export { checkDuration, MAX_DURATION_MS, parseDuration } from './duration.ts';
export {
  conditionSource,
  evaluate,
  PreparedContexts,
  parseExpression,
  type References,
  references,
  type StatusView,
  splitTemplate,
  toText,
  truthy,
} from './expressions.ts';
export { globProblem, matchesGlobList } from './globs.ts';
export { ancestors, findCycles, topologicalOrder } from './graph.ts';
export { resolveInputs } from './inputs.ts';
export { parseBody } from './parse.ts';
export {
  type Capabilities,
  canonicalTags,
  classifyQueues,
  MAX_TAGS,
  parseStepQueue,
  serves,
  stepQueueName,
  TAG,
  waitingReason,
} from './routing.ts';
export type { Definition } from './schema.ts';
export { type HostCatalog, STEP_ID, validateDefinition, WORKFLOW_NAME } from './validate.ts';
export { EVENT_TYPE, eventTypeProblem } from './validate-push-event.ts';
export { cronProblem, DEFAULT_TIMEZONE } from './validate-triggers.ts';
export { type ExecutorName, exprVar, type Step, type Workflow } from './workflow.ts';
