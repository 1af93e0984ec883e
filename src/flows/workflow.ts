/** The validated, normalised workflow the engine works with: defaults applied, durations in ms. */
import type { Definition, InputDefinition } from './schema.ts';

/** Executors a step can run on. */
export type ExecutorName = 'local' | 'ssh' | 'vm';

/** Retry policy of a step: total attempts and BullMQ backoff. */
export interface RetryPolicy {
  attempts: number;
  backoff: 'fixed' | 'exponential';
  delayMs: number;
  jitter: number;
}

/** A shell command whose `${{ }}` were replaced by `${CONVEYOR_EXPR_n}` references. */
export interface CommandTemplate {
  /** The command as the shell will see it. */
  text: string;
  /** Expression sources, `exprs[n]` feeding `CONVEYOR_EXPR_n`. */
  exprs: string[];
}

/** One step, normalised. */
export interface Step {
  id: string;
  name?: string;
  needs: string[];
  /** Expression source of the condition; `success()` when the definition gave none. */
  if: string;
  executor: ExecutorName;
  command?: CommandTemplate;
  function?: string;
  vm?: Record<string, unknown>;
  hosts?: string;
  strategy: { maxParallel?: number; failFast: boolean };
  sudo: boolean;
  /** Values may hold `${{ }}` templates, resolved when the step starts. */
  env: Record<string, string>;
  cwd?: string;
  timeoutMs: number;
  retries: RetryPolicy;
  continueOnError: boolean;
  runsOn: string[];
}

/** A validated workflow. */
export interface Workflow {
  name: string;
  description?: string;
  inputs: Record<string, InputDefinition>;
  env: Record<string, string>;
  on?: Definition['on'];
  /** Workflow-level concurrency: `group` is a template over `inputs` and `trigger`. */
  concurrency?: { group: string; cancelInProgress: boolean };
  steps: Record<string, Step>;
  /** Step ids, dependencies first. */
  order: string[];
}

/** Defaults for what a definition leaves out (documented in the README). */
export const STEP_DEFAULTS = {
  timeoutMs: 60 * 60_000,
  retries: { attempts: 1, backoff: 'fixed', delayMs: 1000, jitter: 0 } satisfies RetryPolicy,
  exponentialJitter: 0.2,
};

/** The environment variable that carries the value of the n-th expression of a command. */
export function exprVar(n: number): string {
  return `CONVEYOR_EXPR_${n}`;
}
