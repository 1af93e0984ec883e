/**
 * The process's pino logger, with the paths that may hold credentials redacted: request
 * headers that carry tokens, cookies or webhook signatures, and the `value` of a secret. A
 * log context (async-local: the API's request) adds its request id to every line written while
 * it runs, whichever logger writes it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import pino, { type DestinationStream, type Logger } from 'pino';

/** Headers whose values are credentials (lower case, as Node and the Fetch API give them). */
const SECRET_HEADERS = [
  'authorization',
  'cookie',
  'set-cookie',
  'proxy-authorization',
  'x-hub-signature',
  'x-hub-signature-256',
  'x-gitlab-token',
  'x-gitea-signature',
  'x-gogs-signature',
];

/** Objects under which a log call may put headers or a request body. */
const HEADER_HOLDERS = ['headers', 'req.headers', 'request.headers', 'res.headers', 'response.headers'];
const BODY_HOLDERS = ['body', 'req.body', 'request.body', 'secret'];

/** Every redacted path (pino's `redact.paths` syntax). */
export const REDACT_PATHS: readonly string[] = [
  ...HEADER_HOLDERS.flatMap((holder) => SECRET_HEADERS.map((h) => `${holder}["${h}"]`)),
  ...BODY_HOLDERS.map((holder) => `${holder}.value`),
  'authorization',
  'token',
];

/** What a redacted value is replaced with. */
export const REDACTED = '[redacted]';

/** What runs in a log context: a request's id and its child logger (bound to that id). */
export interface LogContext {
  requestId: string;
  logger: Logger;
}

const contexts = new AsyncLocalStorage<LogContext>();

/**
 * Runs `fn` in `context`: lines written meanwhile, by any logger from `createLogger`, carry its
 * id. A long-lived loop that a request starts lazily inherits that request's context: start it
 * with `AsyncResource.bind` (or outside requests) if it logs.
 */
export function runInLogContext<T>(context: LogContext, fn: () => T): T {
  return contexts.run(context, fn);
}

/** The current context's logger (a request's child), or `fallback` outside any context. */
export function contextLogger(fallback: Logger): Logger {
  return contexts.getStore()?.logger ?? fallback;
}

/**
 * The current request's id for a line written by a logger that does not carry it already (a
 * module that kept the process logger): the context's own child binds it, so it gets nothing.
 */
function contextFields(_fields: object, _level: number, logger: Logger): object {
  const context = contexts.getStore();
  if (!context || logger === context.logger || 'requestId' in logger.bindings()) return {};
  return { requestId: context.requestId };
}

/** The logger every part of a process shares; `destination` defaults to stdout (tests capture it). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: [...REDACT_PATHS], censor: REDACTED }, mixin: contextFields };
  return destination ? pino(options, destination) : pino(options);
}
