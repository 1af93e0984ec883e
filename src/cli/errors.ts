/**
 * Exit codes and the one error class of the command line: every failure becomes a `CliError`
 * with its exit code, so `main` is the only place that prints and exits.
 */
import type { Issue } from '../errors.ts';

/** What `conveyor` exits with (docs/reference.md, "Command line"). */
export const EXIT = {
  ok: 0,
  /** A run failed or was cancelled, or a check did not pass. */
  failed: 1,
  /** Bad usage or bad input (flags, files, definitions, unknown names). */
  usage: 2,
  /** The API cannot be reached, or it refused the token. */
  unreachable: 3,
  /** Ctrl-C detached from a run that goes on (the shell's 128 + SIGINT). */
  interrupted: 130,
} as const;

/** A failure of a command, with the exit code it ends with. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number,
    readonly details: { issues?: Issue[]; hint?: string; code?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
  }
}

/** Bad usage: exit 2, with the line of help to read. */
export function usageError(message: string, hint?: string): CliError {
  return new CliError(message, EXIT.usage, { code: 'usage', hint });
}
