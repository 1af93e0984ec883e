/**
 * The API client of the command line, and how its failures become exit codes: no answer (refused,
 * timed out, DNS) and a refused token are 3, an error about the input is 2, the API's own
 * failures are 3 too (the server, not the user, has to act).
 */
import { ConveyorApiError, type ConveyorClient, createConveyorClient } from '../client/index.ts';
import { CliError, EXIT } from './errors.ts';

/** Each request but an event stream gives up after this long. */
const REQUEST_TIMEOUT_MS = 30_000;

/** A client for `url`, whose plain requests time out (streams are followed as long as needed). */
export function connect(url: string, token: string | undefined): ConveyorClient {
  const timed: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    if (init?.signal || headers.get('accept') === 'text/event-stream') return fetch(input, init);
    const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    return input instanceof Request
      ? fetch(new Request(input, { signal }))
      : fetch(input, { ...init, signal });
  };
  return createConveyorClient({ baseUrl: url, token, fetch: timed });
}

/** `err` (from a client call) as a `CliError`, or `undefined` when it is not a client failure. */
export function apiFailure(err: unknown, url: string): CliError | undefined {
  if (err instanceof ConveyorApiError) {
    if (err.status === 401 || err.status === 403) {
      return new CliError(`the API refused the token: ${err.message}`, EXIT.unreachable, { code: err.code });
    }
    const exitCode = err.status >= 500 ? EXIT.unreachable : EXIT.usage;
    return new CliError(err.message, exitCode, { code: err.code, issues: err.issues });
  }
  if (err instanceof TypeError || (err instanceof DOMException && err.name === 'TimeoutError')) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? err.message;
    return new CliError(`cannot reach the API at ${url} (${why})`, EXIT.unreachable, {
      code: 'unreachable',
      hint: 'is it running? set CONVEYOR_URL or --url',
    });
  }
  return undefined;
}
