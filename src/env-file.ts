/**
 * `.env` at start: `./.env`, or the file `CONVEYOR_ENV_FILE` names, parsed with Node's own
 * parser (`util.parseEnv`, the one behind `process.loadEnvFile` and `--env-file`). A variable
 * already set in the environment always wins. The values go into the environment object given
 * to the configuration, never into `process.env`, so no step or child process inherits them
 * (a `.env` often holds credentials; see README "Security").
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { ValidationError } from './errors.ts';

/** What reading the file gave. */
export interface EnvFileResult {
  /** `env` with the file's variables added where `env` has none. */
  env: NodeJS.ProcessEnv;
  /** The file read, or undefined when there was no `./.env`. */
  file?: string;
  /** Names taken from the file. */
  loaded: string[];
  /** Names in the file that the environment already set (kept as they were). */
  overridden: string[];
}

/**
 * Adds `./.env` (relative to `cwd`), or `CONVEYOR_ENV_FILE`, to `env` without replacing any
 * variable `env` has. A missing `./.env` is fine; a named file that cannot be read is an error.
 */
export function withEnvFile(env: NodeJS.ProcessEnv, cwd = process.cwd()): EnvFileResult {
  const named = env.CONVEYOR_ENV_FILE;
  const file = resolve(cwd, named || '.env');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (!named && e.code === 'ENOENT') return { env, loaded: [], overridden: [] };
    const path = named ? 'CONVEYOR_ENV_FILE' : '.env';
    throw new ValidationError(`invalid configuration: ${path}: cannot read ${file}: ${e.message}`, [
      { path, message: `cannot read ${file}` },
    ]);
  }
  const out: NodeJS.ProcessEnv = { ...env };
  const loaded: string[] = [];
  const overridden: string[] = [];
  for (const [name, value] of Object.entries(parseEnv(text))) {
    if (value === undefined) continue;
    if (out[name] !== undefined) overridden.push(name);
    else {
      out[name] = value;
      loaded.push(name);
    }
  }
  return { env: out, file, loaded, overridden };
}
