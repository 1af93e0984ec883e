/** The worker process and the executor interface. */
export type { EmittedEvent, Executor, ExecutorContext, StepExecution, StepResult } from './executor.ts';
export { LocalExecutor } from './local/index.ts';
export type { SecretSource } from './step-processor.ts';
export { type ConveyorWorker, startWorker, type WorkerOptions } from './worker.ts';
