/** `conveyor validate <file…>`: every problem of every file, offline, like a compiler. */
import type { Command } from './command.ts';
import { stringFlag } from './command.ts';
import type { DefinitionFile } from './definitions.ts';
import { EXIT } from './errors.ts';

/** The inventory flag of the offline commands. */
export const INVENTORY_FLAG = {
  inventory: {
    type: 'string',
    value: 'file',
    help: 'the inventory that resolves hosts: (default $CONVEYOR_INVENTORY; without one host names are not checked)',
  },
} as const;

/** The command. */
export const validate: Command = {
  name: 'validate',
  summary: 'check definition files offline: every problem with file, line and column',
  usage: 'validate <file…> [--inventory <file>]',
  args: [1, Number.POSITIVE_INFINITY],
  offline: true,
  flags: { ...INVENTORY_FLAG },
  async run({ out, positionals, values, config }) {
    const { formatProblem, inventoryCatalog, loadDefinition } = await import('./definitions.ts');
    const inventory = stringFlag(values, 'inventory') ?? config.CONVEYOR_INVENTORY;
    const hosts = await inventoryCatalog(inventory);
    const files: DefinitionFile[] = [];
    for (const file of positionals) files.push(await loadDefinition(file, hosts));
    const valid = files.every((f) => f.problems.length === 0);
    out.result(
      {
        valid,
        hostsChecked: hosts !== undefined,
        files: files.map((f) => ({
          file: f.file,
          valid: f.problems.length === 0,
          ...(f.workflow && { name: f.workflow.name, steps: f.workflow.order.length }),
          problems: f.problems,
        })),
      },
      () => {
        for (const f of files) {
          if (f.workflow)
            out.line(
              `${f.file}: ${out.paint('green', 'ok')} (${f.workflow.name}, ${f.workflow.order.length} steps)`,
            );
          for (const p of f.problems) out.line(formatProblem(p));
        }
        const count = files.reduce((n, f) => n + f.problems.length, 0);
        if (count) out.note(`${count} problem${count === 1 ? '' : 's'}`);
        if (!hosts && files.some((f) => f.workflow && Object.values(f.workflow.steps).some((s) => s.hosts))) {
          out.note('hosts: not checked (no inventory: --inventory or CONVEYOR_INVENTORY)');
        }
      },
    );
    return valid ? EXIT.ok : EXIT.usage;
  },
};
