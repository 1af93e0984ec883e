#!/usr/bin/env node
// Runs Conveyor from its TypeScript sources (tsx registers the loader), in a process whose
// environment holds no credentials (see supervisor.mjs).
import { receiveCredentials, superviseWithoutCredentials } from './supervisor.mjs';

const [command = 'standalone', ...rest] = process.argv.slice(2);
const modes = new Set(['standalone', 'api', 'worker']);
if (!modes.has(command)) {
  console.error(`usage: conveyor standalone | api | worker   (got "${command}"${rest.length ? ` ${rest.join(' ')}` : ''})`);
  process.exit(2);
}
const credentials = receiveCredentials();
if (!credentials) await superviseWithoutCredentials(process.argv.slice(1));

const { register } = await import('tsx/esm/api');
register();
const { main } = await import('../src/main.ts');
// The credentials go to the configuration only, never back into process.env (which every
// child process, steps included, would inherit).
main(command, { ...process.env, ...credentials }).catch((err) => {
  // A start-up error may quote the Redis URL: never its password.
  console.error(`conveyor: ${String(err.message).replace(/\/\/[^@/\s]*@/g, '//***@')}`);
  process.exit(1);
});
