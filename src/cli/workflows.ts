/** `conveyor workflows list|show|rm`. */
import type { Command } from './command.ts';
import { intFlag } from './command.ts';
import { EXIT } from './errors.ts';

const list: Command = {
  name: 'list',
  summary: 'registered workflows and their latest versions',
  usage: 'workflows list',
  async run({ out, client }) {
    const workflows = await client().workflows.list();
    out.result({ workflows }, () => {
      if (workflows.length === 0) return out.note('no workflows');
      out.table(
        ['workflow', 'version', 'description'],
        workflows.map((w) => [w.name, `v${w.version}`, (w as { description?: string }).description ?? '']),
      );
    });
    return EXIT.ok;
  },
};

const show: Command = {
  name: 'show',
  summary: 'a registered definition, as YAML',
  usage: 'workflows show <name> [--version <n>]',
  args: [1, 1],
  flags: { version: { type: 'string', value: 'n', help: 'that version (default: the latest)' } },
  async run({ out, client, positionals, values }) {
    const { stringify } = await import('yaml');
    const stored = await client().workflows.get(positionals[0]!, intFlag(values, 'version'));
    out.result(stored, () => {
      out.line(`# ${stored.name} v${stored.version}, registered ${stored.createdAt}`);
      out.write(stringify(stored.definition));
    });
    return EXIT.ok;
  },
};

const rm: Command = {
  name: 'rm',
  summary: 'delete a workflow (its runs are kept)',
  usage: 'workflows rm <name>',
  args: [1, 1],
  async run({ out, client, positionals }) {
    await client().workflows.delete(positionals[0]!);
    out.result({ removed: positionals[0] }, () => out.line(`workflow ${positionals[0]} removed`));
    return EXIT.ok;
  },
};

/** The group. */
export const workflows: Command = {
  name: 'workflows',
  summary: 'registered workflows: list, show, rm',
  usage: 'workflows <list|show|rm>',
  subcommands: [list, show, rm],
};
