/** The two unhappy `StepResult` shapes every VM run returns. */
import { ConveyorError, type StepError } from '../../errors.ts';
import type { StepResult } from '../executor.ts';

/** A failed attempt: no outputs, no events (they are published only on success). */
export function failedResult(err: StepError, exitCode: number | null = null): StepResult {
  return {
    exitCode,
    outputs: {},
    events: [],
    error: { code: err.code, message: err.message, retriable: err.retriable },
  };
}

/** An attempt stopped by the engine; `reason` is the abort signal's (timeout, cancel, log cap). */
export function abortedResult(reason: unknown): StepResult {
  const retriable = (reason as { retriable?: unknown } | null)?.retriable;
  const error =
    reason instanceof ConveyorError
      ? { code: reason.code, message: reason.message }
      : { code: 'aborted', message: reason instanceof Error ? reason.message : `aborted: ${String(reason)}` };
  return {
    exitCode: null,
    outputs: {},
    events: [],
    error: typeof retriable === 'boolean' ? { ...error, retriable } : error,
  };
}
