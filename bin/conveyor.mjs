#!/usr/bin/env node
// Runs Conveyor, compiled (dist/) or from its TypeScript sources (see entry.mjs): the command-line
// client, or a server mode in a process whose environment holds no credentials (see supervisor.mjs).
import { importEntry } from './entry.mjs';
import { receiveCredentials, superviseWithoutCredentials } from './supervisor.mjs';

/**
 * The server mode `args` ask for: `standalone | api | worker`, or `serve [--api-only|--worker-only]`;
 * undefined for every other command line, which is the command-line client's (src/cli).
 * @param {string[]} args
 */
function serverMode([first, ...rest]) {
  if (rest.some((a) => a === '--help' || a === '-h')) return undefined;
  if (first === 'standalone' || first === 'api' || first === 'worker') return first;
  if (first !== 'serve' || rest.some((a) => a !== '--api-only' && a !== '--worker-only')) return undefined;
  const api = rest.includes('--api-only');
  const worker = rest.includes('--worker-only');
  return api && worker ? undefined : api ? 'api' : worker ? 'worker' : 'standalone';
}

const command = serverMode(process.argv.slice(2));
if (command === undefined) {
  const { runCli } = await importEntry('cli/index').catch((err) => {
    console.error(`conveyor: ${err.message}`);
    process.exit(1);
  });
  const code = await runCli(process.argv.slice(2));
  // Exit once the output is written: a watch may leave an idle connection open.
  await new Promise((resolve) => process.stdout.write('', resolve));
  process.exit(code);
}
const credentials = receiveCredentials();
if (!credentials) await superviseWithoutCredentials(process.argv.slice(1));

const { main } = await importEntry('main').catch((err) => {
  console.error(`conveyor: ${err.message}`);
  process.exit(1);
});
// The credentials go to the configuration only, never back into process.env (which every
// child process, steps included, would inherit).
main(command, { ...process.env, ...credentials }).catch((err) => {
  // A start-up error may quote the Redis URL: never its password.
  console.error(`conveyor: ${String(err.message).replace(/\/\/[^@/\s]*@/g, '//***@')}`);
  process.exit(1);
});
