/**
 * The process's pino logger, with the paths that may hold credentials redacted: request
 * headers that carry tokens, cookies or webhook signatures, and the `value` of a secret.
 */
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

/** The logger every part of a process shares; `destination` defaults to stdout (tests capture it). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: [...REDACT_PATHS], censor: REDACTED } };
  return destination ? pino(options, destination) : pino(options);
}
