/** `conveyor secrets list|set|rm`: the value of `set` is read from stdin, never from argv. */
import type { Readable } from 'node:stream';
import type { Command } from './command.ts';
import { CliError, EXIT } from './errors.ts';

/** The API's bound on a value; more is refused before it is sent. */
const MAX_VALUE_BYTES = 64 * 1024;

/** All of stdin, up to the bound (one trailing newline dropped: `echo x |` means `x`). */
async function readValue(stdin: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_VALUE_BYTES + 2)
      throw new CliError(`the value is over ${MAX_VALUE_BYTES} bytes`, EXIT.usage);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

const list: Command = {
  name: 'list',
  summary: 'secret names (values are write-only)',
  usage: 'secrets list',
  async run({ out, client }) {
    const names = await client().secrets.list();
    out.result({ secrets: names.map((name) => ({ name })) }, () => {
      if (names.length === 0) out.note('no secrets');
      for (const name of names) out.line(name);
    });
    return EXIT.ok;
  },
};

const set: Command = {
  name: 'set',
  summary: 'store a secret; the value comes from stdin',
  usage: 'secrets set <name> < value-file',
  description:
    'Type the value and end with Ctrl-D, or pipe it: `printf %s "$TOKEN" | conveyor secrets set TOKEN`.',
  args: [1, 1],
  async run({ out, client, positionals }) {
    const name = positionals[0]!;
    if (out.io.stdin.isTTY) out.note(`value of ${name} (end with Ctrl-D):`);
    const value = await readValue(out.io.stdin);
    if (value === '') throw new CliError('empty value on stdin: nothing stored', EXIT.usage);
    await client().secrets.put(name, value);
    out.result({ name }, () => out.line(`secret ${name} stored`));
    return EXIT.ok;
  },
};

const rm: Command = {
  name: 'rm',
  summary: 'remove a secret',
  usage: 'secrets rm <name>',
  args: [1, 1],
  async run({ out, client, positionals }) {
    await client().secrets.delete(positionals[0]!);
    out.result({ removed: positionals[0] }, () => out.line(`secret ${positionals[0]} removed`));
    return EXIT.ok;
  },
};

/** The group. */
export const secrets: Command = {
  name: 'secrets',
  summary: 'encrypted secrets: list, set (from stdin), rm',
  usage: 'secrets <list|set|rm>',
  subcommands: [list, set, rm],
};
