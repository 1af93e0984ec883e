/**
 * Definition files as the engine reads them: the same parser (duplicate keys, YAML bombs,
 * limits) and the same validation the API runs, so the CLI and the API never disagree; every
 * problem located in the file like a compiler's (`file:line:column: path: message`).
 */
import { readFile, stat } from 'node:fs/promises';
import { type Issue, ValidationError } from '../errors.ts';
import { type HostCatalog, parseBody, validateDefinition, type Workflow } from '../flows/index.ts';
import { LIMITS } from '../flows/limits.ts';
import { loadInventoryFile, resolveTargets } from '../inventory/index.ts';
import { CliError, EXIT } from './errors.ts';
import { knownKeys, type Located, locate } from './locate.ts';
import { closest } from './suggest.ts';

/** One problem of a file. */
export interface Problem {
  file: string;
  line: number;
  column: number;
  /** The issue path as the API names it (`steps.deploy.needs[0]`); empty for the whole file. */
  path: string;
  message: string;
  /** The key probably meant, for an unrecognized one. */
  suggestion?: string;
}

/** A definition file, read and checked. */
export interface DefinitionFile {
  file: string;
  text: string;
  /** The parsed value, unless the text did not parse. */
  value?: unknown;
  /** The validated workflow, when there is no problem. */
  workflow?: Workflow;
  problems: Problem[];
}

/** `compiler` form: `file:line:column: path: message (did you mean "x"?)`. */
export function formatProblem(p: Problem): string {
  const hint = p.suggestion ? ` (did you mean "${p.suggestion}"?)` : '';
  return `${p.file}:${p.line}:${p.column}: ${p.path ? `${p.path}: ` : ''}${p.message}${hint}`;
}

/** Reads `file` (at most the API's body limit); a usage error when it cannot be read. */
export async function readText(file: string): Promise<string> {
  const info = await stat(file).catch((err: Error) => {
    throw new CliError(
      `${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : err.message}`,
      EXIT.usage,
    );
  });
  if (!info.isFile()) throw new CliError(`${file}: not a file`, EXIT.usage);
  if (info.size > LIMITS.bodyBytes) {
    throw new CliError(
      `${file}: ${info.size} bytes, over the limit of ${LIMITS.bodyBytes} bytes`,
      EXIT.usage,
    );
  }
  return readFile(file, 'utf8');
}

/** Issues (of the engine or of the API) as located problems of `file`. */
export function problemsOf(file: string, located: Located, issues: Issue[]): Problem[] {
  const problems: Problem[] = [];
  for (const issue of issues) {
    const unknown = /^Unrecognized keys?: (.+)$/.exec(issue.message);
    if (unknown) {
      // One problem per key, at the key itself, with the key probably meant.
      const keys = [...unknown[1]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
      const known = knownKeys(issue.path);
      for (const key of keys) {
        const { line, column } = located.keyPosition(issue.path, key);
        const path = issue.path ? `${issue.path}.${key}` : key;
        const suggestion = closest(key, known);
        problems.push({
          file,
          line,
          column,
          path,
          message: `unknown key "${key}"`,
          ...(suggestion && { suggestion }),
        });
      }
      continue;
    }
    const duplicate = /^duplicate key "(.*)"$/.exec(issue.message);
    // A duplicate is reported where it is written again, not at the first copy.
    const at = duplicate
      ? located.keyPosition(
          issue.path.slice(0, Math.max(0, issue.path.length - duplicate[1]!.length - 1)),
          duplicate[1]!,
          true,
        )
      : located.position(issue.path);
    problems.push({ file, ...at, path: issue.path, message: issue.message });
  }
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Reads, parses and validates a definition file against `hosts` (any host name when undefined). */
export async function loadDefinition(file: string, hosts?: HostCatalog): Promise<DefinitionFile> {
  const text = await readText(file);
  const located = locate(text);
  let value: unknown;
  try {
    value = parseBody(text, /\.json$/i.test(file) ? 'json' : 'yaml');
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    // Syntax errors carry no path: take their positions from the parser.
    if (located.errors.length) {
      const problems = located.errors.map((e) => ({
        file,
        line: e.line,
        column: e.column,
        path: '',
        message: e.message,
      }));
      return { file, text, problems };
    }
    const issues = err.issues.length ? err.issues : [{ path: '', message: err.message }];
    return { file, text, problems: problemsOf(file, located, issues) };
  }
  try {
    const workflow = validateDefinition(value, { hosts: hosts ?? ANY_HOST });
    return { file, text, value, workflow, problems: [] };
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return { file, text, value, problems: problemsOf(file, located, err.issues) };
  }
}

/** Without an inventory, host names are not checked (the API checks them against its own). */
const ANY_HOST: HostCatalog = { resolve: (name) => [name] };

/** The inventory file's catalog (`--inventory` or CONVEYOR_INVENTORY), or undefined without one. */
export async function inventoryCatalog(path: string | undefined): Promise<HostCatalog | undefined> {
  if (!path) return undefined;
  try {
    const inventory = await loadInventoryFile(path);
    return { resolve: (name) => resolveTargets(inventory, name)?.sort() };
  } catch (err) {
    const issues = err instanceof ValidationError ? err.issues : [];
    throw new CliError((err as Error).message, EXIT.usage, { issues });
  }
}
