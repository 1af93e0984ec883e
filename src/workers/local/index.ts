/** The local shell executor. */
export { LocalExecutor, type LocalExecutorOptions, scrubbedEnv } from './local-executor.ts';
