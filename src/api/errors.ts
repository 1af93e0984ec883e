/**
 * Errors → the API's JSON error shape (docs/reference.md §7.2) and status. Handlers throw; `app.onError` (app.ts)
 * is the only place that builds an error response.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ConveyorError, type Issue, StepError, ValidationError } from '../errors.ts';

/** An error that is about HTTP itself (media type, body size, auth…), with headers to send. */
export class HttpError extends ConveyorError {
  override name = 'HttpError';
  constructor(
    readonly status: ContentfulStatusCode,
    code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly issues: Issue[] = [],
  ) {
    super(code, message);
  }
}

/**
 * Status of each known error code. Step error codes can reach the API (a preflight, a host
 * lookup): a missing secret or a bad step is well-formed but not runnable (422); an executor
 * or remote host that cannot be reached is unavailable (503).
 */
const STATUS_BY_CODE: Record<string, ContentfulStatusCode> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  not_runnable: 422,
  secret_missing: 422,
  missing_secret: 422,
  unknown_host: 422,
  secret_decrypt_failed: 422,
  invalid_secret_key: 422,
  invalid_step: 422,
  invalid_env: 422,
  invalid_vm_options: 422,
  bad_cwd: 422,
  no_command: 422,
  unavailable: 503,
  vm_unavailable: 503,
  executor_closed: 503,
  connection_refused: 503,
  dns_failure: 503,
  connect_timeout: 503,
  host_unreachable: 503,
  connection_lost: 503,
};

/** The HTTP status for a `ConveyorError` code; any other step failure is 422, never 500. */
export function statusForError(err: ConveyorError): ContentfulStatusCode {
  return STATUS_BY_CODE[err.code] ?? (err instanceof StepError ? 422 : 500);
}

/** Redis client errors that mean "Redis is not there" rather than a bug. */
function isRedisDown(err: unknown): boolean {
  const e = err as { name?: string; message?: string; code?: string } | undefined;
  if (!e) return false;
  return (
    e.name === 'MaxRetriesPerRequestError' ||
    e.code === 'ECONNREFUSED' ||
    // The last four: a Redis Cluster failing over, or with no node left to ask.
    /enableOfflineQueue|Connection is closed|connect ECONNREFUSED|Stream isn't writeable|CLUSTERDOWN|TRYAGAIN|Too many Cluster redirections|None of startup nodes is available/.test(
      e.message ?? '',
    )
  );
}

/** The response body and status for any thrown value. */
export function toErrorResponse(err: unknown): {
  status: ContentfulStatusCode;
  body: { error: { code: string; message: string; issues?: Issue[] } };
  headers?: Record<string, string>;
} {
  if (err instanceof HttpError) {
    const issues = err.issues.length ? { issues: err.issues } : {};
    return {
      status: err.status,
      body: { error: { code: err.code, message: err.message, ...issues } },
      headers: err.headers,
    };
  }
  if (err instanceof ValidationError) {
    return { status: 400, body: { error: { code: err.code, message: err.message, issues: err.issues } } };
  }
  if (err instanceof ConveyorError) {
    return {
      status: statusForError(err),
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
