/**
 * POSIX shell quoting and the environment rules for values that cross into a remote shell.
 * Single quotes are the only form where nothing inside is special (`$`, backticks, `\`, `;`,
 * newlines all stay literal), so every value goes in single quotes with `'` written as `'\''`.
 */
import { StepError } from '../../errors.ts';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Quotes `value` as one shell word. NUL cannot be passed through a shell and is refused. */
export function shellQuote(value: string): string {
  if (value.includes('\0'))
    throw new StepError('invalid_env', 'a value passed to the remote shell contains a NUL byte', false);
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** `NAME='value'` words for `export` or `env`, after checking every name. */
export function envAssignments(env: Record<string, string>): string[] {
  return envPairs(env).map(([name, value]) => `${name}=${shellQuote(value)}`);
}

/** The `[name, value]` pairs of `env`, after checking every name and value. */
export function envPairs(env: Record<string, string>): Array<[string, string]> {
  return Object.entries(env).map(([name, value]) => {
    if (!ENV_NAME.test(name)) {
      throw new StepError(
        'invalid_env',
        `environment variable name ${JSON.stringify(name)} is not a valid shell name`,
        false,
      );
    }
    if (value.includes('\0'))
      throw new StepError('invalid_env', `the value of ${name} contains a NUL byte`, false);
    return [name, value];
  });
}
