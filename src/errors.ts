/**
 * The few error classes the engine branches on. Each carries a stable `code` that crosses the
 * queue (see `serializeError` / `deserializeError`) and the HTTP boundary (see `api/errors.ts`).
 */

/** One problem in user input, located by a dotted path such as `steps.deploy.needs[0]`. */
export interface Issue {
  path: string;
  message: string;
}

/** Base class: a machine-readable `code` plus the standard `cause`. */
export class ConveyorError extends Error {
  override name = 'ConveyorError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Bad input: HTTP 400 with every problem listed. */
export class ValidationError extends ConveyorError {
  override name = 'ValidationError';
  constructor(
    message: string,
    readonly issues: Issue[] = [],
    options?: { cause?: unknown },
  ) {
    super('invalid_input', message, options);
  }
}

/** Something named does not exist: HTTP 404. */
export class NotFoundError extends ConveyorError {
  override name = 'NotFoundError';
  constructor(message: string) {
    super('not_found', message);
  }
}

/** The request conflicts with the current state (e.g. cancelling a finished run): HTTP 409. */
export class ConflictError extends ConveyorError {
  override name = 'ConflictError';
  constructor(message: string) {
    super('conflict', message);
  }
}

/** Redis (or another backing service) cannot be reached: HTTP 503. */
export class UnavailableError extends ConveyorError {
  override name = 'UnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options);
  }
}

/**
 * A step attempt failed. `retriable: false` tells the engine not to spend further attempts
 * (retrying cannot help: bad output, a host key mismatch, an authentication failure…).
 */
export class StepError extends ConveyorError {
  override name = 'StepError';
  constructor(
    code: string,
    message: string,
    readonly retriable = true,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** A step attempt ran past its `timeout`. */
export class StepTimeoutError extends StepError {
  override name = 'StepTimeoutError';
  constructor(timeoutMs: number) {
    super('timeout', `step timed out after ${timeoutMs} ms`, true);
  }
}

/** The run was cancelled while this step was running. */
export class StepCancelledError extends StepError {
  override name = 'StepCancelledError';
  constructor() {
    super('cancelled', 'step cancelled', false);
  }
}

/**
 * The worker itself stopped the attempt: it is shutting down past its grace period
 * (`shutdown`), or it lost the job's lock to another worker (`lock_lost`). The step is not
 * failed: it runs again elsewhere as a new attempt.
 */
export class StepInterruptedError extends StepError {
  override name = 'StepInterruptedError';
  constructor(code: 'shutdown' | 'lock_lost', message: string) {
    super(code, message, true);
  }
}

/** A step wrote more logs or outputs than the caps allow. Retrying would do the same. */
export class OutputLimitError extends StepError {
  override name = 'OutputLimitError';
  constructor(message: string) {
    super('output_limit', message, false);
  }
}

/** The serialized form of an error that crosses Redis (job data, run documents, events). */
export interface SerializedError {
  code: string;
  message: string;
}

/** Turns any thrown value into its stored form; unknown errors become `internal`. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof ConveyorError) return { code: err.code, message: err.message };
  if (err instanceof Error) return { code: 'internal', message: err.message };
  return { code: 'internal', message: String(err) };
}
