/**
 * Errors → the contract's JSON error shape and status. Handlers throw; `app.onError` (app.ts)
 * is the only place that builds an error response.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ConveyorError, type Issue, ValidationError } from '../errors.ts';

/** An error that is about HTTP itself (media type, body size…). */
export class HttpError extends ConveyorError {
  override name = 'HttpError';
  constructor(
    readonly status: ContentfulStatusCode,
    code: string,
    message: string,
    readonly issues: Issue[] = [],
  ) {
    super(code, message);
  }
}

const STATUS_BY_CODE: Record<string, ContentfulStatusCode> = {
  invalid_input: 400,
  not_found: 404,
  conflict: 409,
  not_runnable: 422,
  unavailable: 503,
};

/** Redis client errors that mean "Redis is not there" rather than a bug. */
function isRedisDown(err: unknown): boolean {
  const e = err as { name?: string; message?: string; code?: string } | undefined;
  if (!e) return false;
  return (
    e.name === 'MaxRetriesPerRequestError' ||
    e.code === 'ECONNREFUSED' ||
    /enableOfflineQueue|Connection is closed|connect ECONNREFUSED|Stream isn't writeable/.test(
      e.message ?? '',
    )
  );
}

/** The response body and status for any thrown value. */
export function toErrorResponse(err: unknown): {
  status: ContentfulStatusCode;
  body: { error: { code: string; message: string; issues?: Issue[] } };
} {
  if (err instanceof HttpError) {
    const issues = err.issues.length ? { issues: err.issues } : {};
    return { status: err.status, body: { error: { code: err.code, message: err.message, ...issues } } };
  }
  if (err instanceof ValidationError) {
    return { status: 400, body: { error: { code: err.code, message: err.message, issues: err.issues } } };
  }
  if (err instanceof ConveyorError) {
    return {
      status: STATUS_BY_CODE[err.code] ?? 500,
      body: { error: { code: err.code, message: err.message } },
    };
  }
  if (isRedisDown(err)) {
    return {
      status: 503,
      body: { error: { code: 'unavailable', message: 'Redis is unavailable; try again later' } },
    };
  }
  return { status: 500, body: { error: { code: 'internal', message: 'internal error' } } };
}
