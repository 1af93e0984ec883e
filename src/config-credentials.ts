/**
 * Credentials in configuration: values that may come from a file instead of the environment
 * (`<NAME>_FILE`, the convention of Docker and Kubernetes secrets), so they never sit in any
 * process's environment, and the Redis password folded into the Redis URL. Read once, at start,
 * by `loadConfig`.
 */
import { readFileSync } from 'node:fs';
import { type Issue, ValidationError } from './errors.ts';

/** Variables that may name a file holding their value instead (`CONVEYOR_SECRET_KEY_FILE`, …). */
export const FILE_VARIABLES = ['CONVEYOR_SECRET_KEY', 'REDIS_URL', 'REDIS_PASSWORD'] as const;

/** `env` with each `<NAME>_FILE` replaced by `<NAME>` holding the file's content. */
export function readCredentialFiles(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  const issues: Issue[] = [];
  for (const name of FILE_VARIABLES) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    delete out[`${name}_FILE`];
    if (env[name] !== undefined) {
      issues.push({ path: `${name}_FILE`, message: `set ${name} or ${name}_FILE, not both` });
      continue;
    }
    try {
      // One trailing newline (what `echo value > file` leaves) is not part of the value.
      const value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      if (value) out[name] = value;
      else issues.push({ path: `${name}_FILE`, message: `${file} is empty` });
    } catch (err) {
      issues.push({ path: `${name}_FILE`, message: `cannot read ${file}: ${(err as Error).message}` });
    }
  }
  if (issues.length) {
    throw new ValidationError(
      `invalid configuration: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  return out;
}

/** `url` with `password` (REDIS_PASSWORD) as its password; a URL that has one already conflicts. */
export function withRedisPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const parsed = new URL(url);
  if (parsed.password) {
    throw new ValidationError('invalid configuration: REDIS_PASSWORD: REDIS_URL has a password already', [
      { path: 'REDIS_PASSWORD', message: 'REDIS_URL has a password already' },
    ]);
  }
  // The setter percent-encodes what a URL cannot hold as is (`@`, `:`, `/`); ioredis decodes it.
  parsed.password = password;
  return parsed.href;
}
