/** The local shell executor. */
export { type ContainmentMode, probeContainment, type RunAs } from './containment.ts';
export { LocalExecutor, type LocalExecutorOptions, scrubbedEnv } from './local-executor.ts';
export { resolveRunAs } from './run-as.ts';
export { type WorkspaceOptions, Workspaces } from './workspace.ts';
