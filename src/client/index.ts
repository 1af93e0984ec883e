/**
 * The typed client of the Conveyor API, for tests, the CLI and users' scripts. Its types are
 * generated from the OpenAPI document (`npm run openapi:client`); a test fails when they are stale.
 */
export {
  type ClientOptions,
  type ConveyorClient,
  createConveyorClient,
  type Definition,
  type Host,
  type HostCheck,
  type HostInput,
  type Plan,
  type PublishedEvent,
  type Run,
  type RunList,
  type RunRequest,
  type WorkerInfo,
  type WorkflowVersion,
} from './client.ts';
export { type ApiIssue, ConveyorApiError } from './errors.ts';
export type { FollowOptions, RunEvent } from './follow.ts';
export type { components, operations, paths } from './schema.ts';
