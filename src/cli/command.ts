/**
 * What a command is: its name, help text, flags (node:util parseArgs) and positional count, and
 * a `run` that gets a parsed context. Groups (`hosts list|add|rm|check`) hold subcommands.
 * Parsing errors become usage errors (exit 2) naming the flag, with "did you mean".
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { ConveyorClient } from '../client/index.ts';
import type { CliConfig } from '../config-cli.ts';
import { usageError } from './errors.ts';
import type { Output } from './output.ts';
import { didYouMean } from './suggest.ts';

/** Flag definitions, as parseArgs takes them, each with its help line. */
export type Flags = Record<
  string,
  { type: 'string' | 'boolean'; short?: string; multiple?: boolean; help: string; value?: string }
>;

/** Parsed flag values. */
export type Values = Record<string, string | boolean | string[] | undefined>;

/** What a command's `run` gets. */
export interface Context {
  out: Output;
  config: CliConfig;
  values: Values;
  positionals: string[];
  /** The API client, created on first use from --url/--token or CONVEYOR_URL/CONVEYOR_TOKEN. */
  client(): ConveyorClient;
  /** The API's base URL (for messages). */
  url: string;
}

/** One command or subcommand. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The synopsis after `conveyor`, such as `run <file|name> [flags]`. */
  usage: string;
  /** More help, shown by `--help`. */
  description?: string;
  flags?: Flags;
  /** Positional arguments allowed: `[min, max]` (max Infinity for lists). @defaultValue [0, 0] */
  args?: [number, number];
  /** Offline commands take no --url/--token. */
  offline?: boolean;
  /** Returns the exit code (0 when nothing is returned). */
  run?(ctx: Context): Promise<number | undefined> | number | undefined;
  /** Subcommands, for a group. */
  subcommands?: Command[];
}

/** Flags every command takes. */
export const GLOBAL_FLAGS: Flags = {
  json: { type: 'boolean', help: 'print one JSON document instead of text' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

/** Flags of commands that talk to the API. */
export const API_FLAGS: Flags = {
  url: { type: 'string', value: 'url', help: 'the API (default $CONVEYOR_URL or http://127.0.0.1:8080)' },
  token: { type: 'string', value: 'token', help: 'the API token (default $CONVEYOR_TOKEN)' },
};

/** All flags of `command`. */
export function flagsOf(command: Command): Flags {
  return { ...command.flags, ...(command.offline ? {} : API_FLAGS), ...GLOBAL_FLAGS };
}

/** Parses `argv` for `command`; throws a usage error for unknown flags, bad values or counts. */
export function parseCommand(
  command: Command,
  argv: string[],
  path: string,
): { values: Values; positionals: string[] } {
  const flags = flagsOf(command);
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, flag] of Object.entries(flags)) {
    options[name] = {
      type: flag.type,
      ...(flag.short && { short: flag.short }),
      ...(flag.multiple && { multiple: true }),
    };
  }
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (err) {
    throw usageError(
      parseMessage(err as Error & { code?: string }, argv, Object.keys(flags)),
      `see: conveyor ${path} --help`,
    );
  }
  if (parsed.values.help) return parsed;
  const [min, max] = command.args ?? [0, 0];
  const count = parsed.positionals.length;
  if (count < min || count > max) {
    const expected = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw usageError(
      `${path}: expected ${expected} argument${max === 1 && min === 1 ? '' : 's'}, got ${count}${count > max ? ` (${parsed.positionals.slice(max).join(' ')})` : ''}`,
      `usage: conveyor ${command.usage}`,
    );
  }
  return parsed;
}

/** parseArgs' message, reworded with the flag it names and the closest known one. */
function parseMessage(err: Error & { code?: string }, argv: string[], known: string[]): string {
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flag = /'([^']+)'/.exec(err.message)?.[1] ?? argv.find((a) => a.startsWith('-')) ?? '';
    const bare = flag.replace(/^-+/, '').split('=')[0]!;
    return `unknown flag ${flag}${didYouMean(bare, known).replace(/"([^"]+)"/, '"--$1"')}`;
  }
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    return err.message
      .split('\n')[0]!
      .replace(/^Option '([^']+)'/, 'flag $1')
      .replace(/\.$/, '');
  }
  return err.message.split('\n')[0]!;
}

/** Help text of `command`, reached as `conveyor <path>`. */
export function helpOf(command: Command, path: string): string {
  const lines = [`usage: conveyor ${command.usage}`, '', command.summary];
  if (command.description) lines.push('', command.description);
  if (command.subcommands) {
    lines.push('', 'commands:');
    const width = Math.max(...command.subcommands.map((c) => c.usage.length - path.length - 1));
    for (const sub of command.subcommands) {
      lines.push(`  ${sub.usage.slice(path.length + 1).padEnd(width)}  ${sub.summary}`);
    }
  }
  const flags = command.subcommands ? GLOBAL_FLAGS : flagsOf(command);
  lines.push('', 'flags:');
  const names = Object.entries(flags).map(([name, f]) => {
    const short = f.short ? `-${f.short}, ` : '';
    return [`${short}--${name}${f.type === 'string' ? ` <${f.value ?? 'value'}>` : ''}`, f.help] as const;
  });
  const width = Math.max(...names.map(([n]) => n.length));
  for (const [name, help] of names) lines.push(`  ${name.padEnd(width)}  ${help}`);
  return lines.join('\n');
}

/** A string flag's value (last one wins when repeated). */
export function stringFlag(values: Values, name: string): string | undefined {
  const v = values[name];
  return Array.isArray(v) ? v.at(-1) : typeof v === 'string' ? v : undefined;
}

/** A positive integer flag; a usage error otherwise. */
export function intFlag(values: Values, name: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = stringFlag(values, name);
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(v) || Number(v) > max)
    throw usageError(`--${name}: expected a whole number from 1 to ${max}, got "${v}"`);
  return Number(v);
}
