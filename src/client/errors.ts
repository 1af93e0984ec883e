/** The error the client throws for an error response: the API's error shape, with its status. */

/** One problem with the input, as the API names it. */
export interface ApiIssue {
  path: string;
  message: string;
}

/** An error response of the API (`{error: {code, message, issues?}}`) or a response it could not read. */
export class ConveyorApiError extends Error {
  override name = 'ConveyorApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: ApiIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Builds the error from a response body, whatever it holds. */
export function apiError(status: number, body: unknown): ConveyorApiError {
  const error = (body as { error?: { code?: unknown; message?: unknown; issues?: unknown } } | undefined)
    ?.error;
  if (error && typeof error.code === 'string' && typeof error.message === 'string') {
    return new ConveyorApiError(
      status,
      error.code,
      error.message,
      Array.isArray(error.issues) ? error.issues : [],
    );
  }
  return new ConveyorApiError(status, 'http_error', `HTTP ${status}`);
}
