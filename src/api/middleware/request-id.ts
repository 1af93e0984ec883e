/**
 * `X-Request-Id`: a client's own id is kept when it is sane (at most 200 characters of letters,
 * digits, `_`, `-` and `=`, hono's check), otherwise a UUID is made; either way it is on every
 * response, errors included.
 */
import type { MiddlewareHandler } from 'hono';
import { requestId as honoRequestId } from 'hono/request-id';

/** The header that carries the id, both ways. */
export const REQUEST_ID_HEADER = 'X-Request-Id';

/** Longest incoming id that is kept; a longer one is replaced, not cut (a cut id matches nothing). */
export const MAX_REQUEST_ID_LENGTH = 200;

/** Chooses the request's id (`c.get('requestId')`) and returns it on the response. */
export function requestId(): MiddlewareHandler {
  const choose = honoRequestId({ limitLength: MAX_REQUEST_ID_LENGTH, headerName: REQUEST_ID_HEADER });
  return async (c, next) => {
    await choose(c, next);
    // An error answer is a new Response made by the error handler: set the header on the final one.
    c.res.headers.set(REQUEST_ID_HEADER, c.get('requestId'));
  };
}
