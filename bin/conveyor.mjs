#!/usr/bin/env node
// Runs Conveyor, compiled (dist/) or from its TypeScript sources (see entry.mjs), in a process
// whose environment holds no credentials (see supervisor.mjs).
import { importEntry } from './entry.mjs';
import { receiveCredentials, superviseWithoutCredentials } from './supervisor.mjs';

const [command = 'standalone', ...rest] = process.argv.slice(2);
const modes = new Set(['standalone', 'api', 'worker']);
if (!modes.has(command)) {
  console.error(
    `usage: conveyor standalone | api | worker   (got "${command}"${rest.length ? ` ${rest.join(' ')}` : ''})`,
  );
  process.exit(2);
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
