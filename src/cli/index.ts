/**
 * The `conveyor` command line over the HTTP API (and offline for definition files): finds the
 * command, parses its flags, runs it, and turns whatever it throws into a message and an exit
 * code (0 ok, 1 a run failed, 2 bad usage or input, 3 the API unreachable or refusing the token).
 * The server modes (`standalone`, `api`, `worker`, `serve`) are started by bin/conveyor.mjs.
 */

import type { ConveyorClient } from '../client/index.ts';
import type { CliConfig } from '../config-cli.ts';
import { ValidationError } from '../errors.ts';
import { conveyorVersion } from '../version.ts';
import { type Command, type Context, helpOf, parseCommand, stringFlag } from './command.ts';
import { CliError, EXIT, usageError } from './errors.ts';
import { hosts } from './hosts.ts';
import { init } from './init.ts';
import { type Io, Output } from './output.ts';
import { plan } from './plan.ts';
import { push } from './push.ts';
import { run } from './run.ts';
import { cancel, logs, retry, runs, show, watch } from './runs.ts';
import { secrets } from './secrets.ts';
import { didYouMean } from './suggest.ts';
import { events, serve, triggers, workers } from './system.ts';
import { validate } from './validate.ts';
import { workflows } from './workflows.ts';

export type { Io } from './output.ts';

/** Every command, in the order of the help. */
export const COMMANDS: readonly Command[] = [
  init,
  validate,
  plan,
  push,
  run,
  watch,
  runs,
  show,
  logs,
  cancel,
  retry,
  workflows,
  hosts,
  secrets,
  events,
  workers,
  triggers,
  serve,
];

/** The server modes bin/conveyor.mjs starts itself (listed in the help). */
const SERVER_MODES = ['standalone', 'api', 'worker'];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length), 'standalone'.length);
  return [
    'usage: conveyor <command> [flags]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'standalone'.padEnd(width)}  the server: API and worker in one process (npm start); also api, worker`,
    '',
    'Every command takes --help and --json. The API is $CONVEYOR_URL (or --url), the token',
    '$CONVEYOR_TOKEN (or --token). Exit status: 0 ok, 1 a run failed, 2 bad usage or input,',
    '3 the API is unreachable or refused the token.',
  ].join('\n');
}

const defaultIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };

/** Runs the command line `argv` (without `node conveyor`); resolves to the exit code. */
export async function runCli(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  io: Io = defaultIo,
): Promise<number> {
  const json = argv.includes('--json');
  const out = new Output(io, { json, noColor: env.NO_COLOR });
  let url = '';
  try {
    return await dispatch(argv, out, env, (u) => {
      url = u;
    });
  } catch (err) {
    return report(out, err, url);
  }
}

// Modules load on demand: `--help` and offline commands never load the client, and only the
// command run loads the engine's parser (a CLI start-up is mostly module loading).
async function dispatch(
  argv: string[],
  out: Output,
  env: NodeJS.ProcessEnv,
  setUrl: (url: string) => void,
): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h') {
    out.io.stdout.write(`${mainHelp()}\n`);
    return EXIT.ok;
  }
  if (first === '--version') {
    out.io.stdout.write(`${conveyorVersion()}\n`);
    return EXIT.ok;
  }
  if (first === 'help') return dispatch([...rest, '--help'], out, env, setUrl);
  if (first.startsWith('-'))
    throw usageError(`flags come after the command (got ${first} first)`, 'see: conveyor --help');
  // `conveyor api --help`: the server modes' help is serve's.
  let command = SERVER_MODES.includes(first) ? serve : COMMANDS.find((c) => c.name === first);
  const names = [...COMMANDS.map((c) => c.name), ...SERVER_MODES];
  if (!command)
    throw usageError(`unknown command "${first}"${didYouMean(first, names)}`, 'see: conveyor --help');
  let args = rest;
  let path = command.name;
  if (command.subcommands) {
    const [sub, ...subArgs] = rest;
    if (sub === undefined || sub === '--help' || sub === '-h' || (sub === '--json' && subArgs.length === 0)) {
      if (sub === undefined)
        throw usageError(
          `${command.name}: which one? ${command.subcommands.map((s) => s.name).join(', ')}`,
          `see: conveyor ${command.name} --help`,
        );
      out.io.stdout.write(`${helpOf(command, command.name)}\n`);
      return EXIT.ok;
    }
    const found = command.subcommands.find((s) => s.name === sub);
    if (!found) {
      const known = command.subcommands.map((s) => s.name);
      throw usageError(
        `unknown command "${command.name} ${sub}"${didYouMean(sub, known)}`,
        `see: conveyor ${command.name} --help`,
      );
    }
    command = found;
    args = subArgs;
    path = `${path} ${found.name}`;
  }
  const { values, positionals } = parseCommand(command, args, path);
  if (values.help) {
    out.io.stdout.write(`${helpOf(command, path)}\n`);
    return EXIT.ok;
  }
  const { loadCliConfig } = await import('../config-cli.ts');
  const config: CliConfig = loadCliConfig(env);
  const url = stringFlag(values, 'url') ?? config.CONVEYOR_URL;
  if (!/^https?:\/\/[^/]/.test(url)) throw usageError(`--url: expected http(s)://host[:port], got "${url}"`);
  setUrl(url);
  const { connect } = command.offline ? { connect: undefined } : await import('./connect.ts');
  let client: ConveyorClient | undefined;
  const ctx: Context = {
    out,
    config,
    values,
    positionals,
    url,
    client: () => {
      client ??= connect!(url, stringFlag(values, 'token') ?? config.CONVEYOR_TOKEN);
      return client;
    },
  };
  return (await command.run!(ctx)) ?? EXIT.ok;
}

/** Prints `err` (stderr, and stdout as `{error}` with --json) and returns its exit code. */
async function report(out: Output, err: unknown, url: string): Promise<number> {
  let failure: CliError;
  if (err instanceof CliError) failure = err;
  else if (err instanceof ValidationError) {
    failure = new CliError(err.message, EXIT.usage, { code: err.code, issues: err.issues });
  } else {
    const { apiFailure } = await import('./connect.ts');
    const api = apiFailure(err, url);
    if (!api) {
      out.note(`conveyor: unexpected error: ${(err as Error)?.stack ?? String(err)}`);
      return EXIT.failed;
    }
    failure = api;
  }
  const { issues = [], hint, code } = failure.details;
  out.document({
    error: { code: code ?? 'error', message: failure.message, ...(issues.length && { issues }) },
  });
  out.note(`conveyor: ${failure.message}`);
  // A file's problems are in the hint, located; the API's issues otherwise.
  if (hint) out.note(hint);
  else for (const issue of issues) out.note(`  ${issue.path ? `${issue.path}: ` : ''}${issue.message}`);
  return failure.exitCode;
}
