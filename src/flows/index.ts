/** The definition language: parsing, validation, expressions and the DAG → BullMQ flow compiler. */

export { canonicalJson, digestOf } from './canonical.ts';
export {
  compileRun,
  EXECUTOR_NAMES,
  GATE_PARK_MS,
  type GateJobData,
  gateJobId,
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
  parseExpression,
  type References,
  references,
  type StatusView,
  splitTemplate,
  toText,
  truthy,
} from './expressions.ts';
export { ancestors, findCycles, topologicalOrder } from './graph.ts';
export { resolveInputs } from './inputs.ts';
export { parseBody } from './parse.ts';
export type { Definition } from './schema.ts';
export { type HostCatalog, STEP_ID, validateDefinition, WORKFLOW_NAME } from './validate.ts';
export { type ExecutorName, exprVar, type Step, type Workflow } from './workflow.ts';
