/**
 * The interface every executor implements (local shell, SSH, VM, and the benchmark's no-op).
 * The engine owns everything around an attempt: expressions, env, timeouts, cancellation, log
 * batching, caps, masking, state and events. An executor only runs one attempt and honours
 * its abort signal: adding an executor means adding a folder, not editing a switch.
 */
import type { SerializedError } from '../errors.ts';

/** One attempt of one step (or of one host instance of a fan-out step), fully resolved. */
export interface StepExecution {
  runId: string;
  stepId: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** Shell command, with every `${{ }}` already replaced by a reference to an env variable. */
  command?: string;
  /** ES module source of a function step (VM executor). */
  function?: string;
  /** Environment the step declared, plus the variables that carry expression values. */
  env: Record<string, string>;
  /** Working directory (local: on the worker; ssh: on the host). */
  cwd?: string;
  /** Values the command must never show: executors need them only to mask their own errors. */
  secrets: string[];
  /** Stable across retries of this step in this run (`CONVEYOR_IDEMPOTENCY_KEY`). */
  idempotencyKey: string;
  limits: {
    /** Outputs file / returned object, in bytes (1 MiB by default, docs/reference.md §3.9). */
    maxOutputBytes: number;
  };
  /** Executor-specific settings (e.g. `{ host }` for ssh, `{ memoryMb, network }` for vm). */
  options: Record<string, unknown>;
  /** Read-only data for function steps: `inputs`, `steps` (outputs of finished steps), `run`… */
  context: Record<string, unknown>;
}

/** What an executor may tell the engine while an attempt runs. */
export interface ExecutorContext {
  /**
   * Aborted on timeout, cancel or log-cap breach; `signal.reason` says which. The executor must
   * then stop everything it started (process group, remote process tree, VM) and return.
   */
  signal: AbortSignal;
  /** A chunk of the step's output; the engine masks, caps, batches and publishes it. */
  log(stream: 'stdout' | 'stderr', chunk: string | Buffer): void;
  /** Progress in percent (0–100), with an optional message: a `step.progress` event. */
  progress(percent: number, message?: string): void;
}

/** One event a step asked to publish (`$CONVEYOR_EVENTS` lines or `ctx.emit`). */
export interface EmittedEvent {
  type: string;
  payload: unknown;
}

/** The outcome of one attempt. A non-zero exit code or an `error` makes it a failure. */
export interface StepResult {
  exitCode: number | null;
  /** Signal that ended the process, when one did. */
  signal?: string | null;
  outputs: Record<string, unknown>;
  events: EmittedEvent[];
  /** Set when the attempt failed for a reason other than a non-zero exit code. */
  error?: SerializedError & { retriable?: boolean };
}

/** An executor: `local`, `ssh`, `vm`, … */
export interface Executor {
  readonly name: string;
  run(step: StepExecution, ctx: ExecutorContext): Promise<StepResult>;
  /** Releases pooled resources (connections, warm VMs). */
  close(): Promise<void>;
  /** A run ended: drop what this executor keeps for it on this worker (its workspace). */
  runEnded?(runId: string): Promise<void>;
  /** What the worker logs about this executor at start, and a warning when it runs weakened. */
  describe?(): Promise<{ details: Record<string, unknown>; warning?: string }>;
  /** At start: drop what is kept for runs that ended while the worker was away. */
  sweep?(states: (runIds: string[]) => Promise<Array<'ended' | 'active' | 'unknown'>>): Promise<void>;
  /**
   * A step on `host` is about to run: start what `run` would look up first (the host's address
   * and credentials), so that the lookup overlaps the engine's own writes before the attempt.
   */
  prefetch?(host: string): void;
}
