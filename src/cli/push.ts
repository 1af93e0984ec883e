/**
 * `conveyor push <file|dir>…`: registers definitions (every .yml, .yaml and .json of a folder, in
 * name order: a folder in git is a simple GitOps flow) and prints each one's version, marking
 * those the API already had. The API's issues are located in the file like `validate`'s.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConveyorApiError } from '../client/errors.ts';
import type { Command } from './command.ts';
import type { Problem } from './definitions.ts';
import { CliError, EXIT } from './errors.ts';

/** Definition files named by `targets` (folders expanded, not recursively). */
export async function definitionFiles(targets: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const target of targets) {
    const info = await stat(target).catch(() => undefined);
    if (!info) throw new CliError(`${target}: no such file or folder`, EXIT.usage);
    if (!info.isDirectory()) {
      files.push(target);
      continue;
    }
    const names = (await readdir(target))
      .filter((n) => /\.(ya?ml|json)$/i.test(n) && !n.startsWith('.'))
      .sort();
    if (names.length === 0) throw new CliError(`${target}: no .yml, .yaml or .json file`, EXIT.usage);
    files.push(...names.map((n) => join(target, n)));
  }
  return files;
}

/** The command. */
export const push: Command = {
  name: 'push',
  summary: 'register definitions (files, or every YAML/JSON file of a folder)',
  usage: 'push <file|dir…>',
  args: [1, Number.POSITIVE_INFINITY],
  async run({ out, positionals, client }) {
    const { formatProblem, problemsOf, readText } = await import('./definitions.ts');
    const { locate } = await import('./locate.ts');
    const files = await definitionFiles(positionals);
    const api = client();
    const pushed: Array<{ file: string; name: string; version: number; created: boolean }> = [];
    const refused: Array<{ file: string; problems: Problem[] }> = [];
    for (const file of files) {
      const text = await readText(file);
      try {
        const { name, version, created } = await api.workflows.register(text);
        pushed.push({ file, name, version, created });
        out.line(
          `${name.padEnd(24)} v${String(version).padEnd(4)} ${created ? out.paint('green', 'created') : out.paint('dim', 'unchanged')}  ${out.paint('dim', file)}`,
        );
      } catch (err) {
        if (!(err instanceof ConveyorApiError) || err.status !== 400) throw err;
        const issues = err.issues.length ? err.issues : [{ path: '', message: err.message }];
        const problems = problemsOf(file, locate(text), issues);
        refused.push({ file, problems });
        for (const p of problems) out.line(formatProblem(p));
      }
    }
    out.document({ workflows: pushed, refused });
    if (refused.length) out.note(`${refused.length} of ${files.length} refused`);
    return refused.length ? EXIT.usage : EXIT.ok;
  },
};
